"""Searches on real PostgreSQL with real executors: TPE with the median pruner finds a known optimum and
prunes, and two drivers (two replicas' engines) never double a trial."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from ptw.domain.errors import BadInput
from ptw.domain.optimizations import (
    Direction,
    Optimization,
    OptimizationKind,
    OptimizationStatus,
    ResultState,
)
from ptw.domain.ports import PageRequest
from ptw.domain.runs import RunStatus
from ptw.domain.services.optimization_driver import OptimizationDriver
from ptw.domain.services.optimizations import OptimizationSpec
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Actor, Role
from ptw.domain.workflows import Workflow
from ptw.executors.pool import LocalExecutorPool
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.db import Database
from ptw.infra.search import PostgresLease
from ptw.infra.settings import Settings
from ptw.lifecycle import prune_advisor
from tests.fixtures.databases import fresh_postgres_url

REPO = Path(__file__).resolve().parents[2]
SCHEMA = {
    "type": "object",
    "properties": {
        "x": {"type": "number", "minimum": -10, "maximum": 10},
        "steps": {"type": "integer", "minimum": 1},
        "delay": {"type": "number", "minimum": 0},
    },
    "additionalProperties": False,
}
SPACE = {"x": {"type": "float", "low": -2.0, "high": 8.0}}


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    async with fresh_postgres_url() as url:
        services = await bootstrap(Settings(data_dir=tmp_path, database_url=url, executors=0), migrate=True)
        yield services
        await services.aclose()


@pytest.fixture
async def actor(services: Services) -> Actor:
    issued = await services.access.bootstrap_key("search", Role.ADMIN)
    return await services.access.authenticate(issued.secret)


@pytest.fixture
async def workflow(services: Services, actor: Actor) -> Workflow:
    spec = WorkflowSpec(
        name="quadratic",
        entrypoint="tests.workflows.objective:quadratic",
        params_schema=SCHEMA,
        defaults={"x": 0.0, "steps": 8, "delay": 0.05},
    )
    return await services.workflows.register(actor, None, spec)


@contextlib.asynccontextmanager
async def executors(services: Services, tmp_path: Path, slots: int) -> AsyncIterator[None]:
    pool = LocalExecutorPool(
        services.execution,
        services.metrics,
        services.bus,
        services.local_queue,
        services.registry,
        tmp_path / "artifacts",
        slots=slots,
        env={"PYTHONPATH": str(REPO)},
        prune_advisor=prune_advisor(services),
    )
    await pool.start()
    try:
        yield
    finally:
        await pool.stop(grace=3)


@contextlib.asynccontextmanager
async def driving(*drivers: OptimizationDriver) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(d.run()) for d in drivers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def finished(services: Services, actor: Actor, optimization_id: str, within: float) -> Optimization:
    deadline = time.monotonic() + within
    while True:
        optimization = await services.optimizations.get(actor, optimization_id)
        if optimization.finished:
            return optimization
        assert time.monotonic() < deadline, f"still {optimization.status.value} after {within} s"
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def second_replica(services: Services) -> AsyncIterator[OptimizationDriver]:
    """A driver with its own engine on the same database, as another API replica would have."""
    database = Database(services.database.url)
    driver = services.optimization_driver
    assert driver is not None
    try:
        yield replace(driver, uow=database.uow_factory(), lease=PostgresLease(database.engine), interval=0.2)
    finally:
        await database.dispose()


async def test_tpe_with_the_median_pruner_finds_the_optimum_over_two_executors(
    services: Services, actor: Actor, workflow: Workflow, tmp_path: Path
) -> None:
    spec = OptimizationSpec(
        workflow.id,
        OptimizationKind.HYPERPARAMETER_SEARCH,
        objective="objective",
        direction=Direction.MAXIMIZE,
        space=SPACE,
        sampler="tpe",
        pruner="median",
        max_trials=12,
        max_parallel=2,
    )
    driver = services.optimization_driver
    assert driver is not None
    driver.interval = 0.2
    async with executors(services, tmp_path, slots=2), second_replica(services) as other:
        async with driving(driver, other):
            started = await services.optimizations.start(actor, None, spec)
            done = await finished(services, actor, started.id, within=90)

    assert done.status is OptimizationStatus.SUCCEEDED, done.error
    page = await services.optimizations.results(actor, done.id, PageRequest(first=100))
    results = page.items
    assert sorted(r.number for r in results) == list(range(12))  # two drivers, no trial twice
    best = await services.optimizations.best(actor, done.id)
    complete = [r for r in results if r.state is ResultState.COMPLETE]
    assert best is not None and results[0] == best  # sorted best first
    assert best.value == max(r.value or -1e9 for r in complete)
    assert best.value is not None and best.value > -2.25, best  # |x - 3| < 1.5
    assert abs(best.config["x"] - 3) < 1.5
    pruned = [r for r in results if r.state is ResultState.PRUNED]
    assert pruned, [(r.state, r.value) for r in results]
    runs = await services.runs.list_runs(actor, PageRequest(first=100), optimization_id=done.id)
    assert len(runs.items) == 12
    by_id = {run.id: run for run in runs.items}
    for result in results:
        run = by_id[result.run_id or ""]
        assert run.params == {"x": result.config["x"], "steps": 8, "delay": 0.05}
        expected = {ResultState.COMPLETE: RunStatus.SUCCEEDED, ResultState.PRUNED: RunStatus.PRUNED}
        assert run.status is expected[result.state]
    for result in pruned:  # stopped early: fewer reports than steps
        assert result.metrics["reports"] < 8 and result.value == result.metrics["objective"]


async def test_two_drivers_at_once_create_each_trial_once(
    services: Services, actor: Actor, workflow: Workflow
) -> None:
    spec = OptimizationSpec(
        workflow.id,
        OptimizationKind.HYPERPARAMETER_SEARCH,
        objective="objective",
        direction=Direction.MAXIMIZE,
        space=SPACE,
        sampler="random",
        max_trials=6,
        max_parallel=4,
    )
    started = await services.optimizations.start(actor, None, spec)
    driver = services.optimization_driver
    assert driver is not None
    async with second_replica(services) as other:
        async with other.lease.hold(started.id) as held:
            assert held
            assert await driver.tick() == 0  # the other replica holds it: this one skips it
        # Without the lease (advance directly), the optimization's row lock still keeps them apart.
        await asyncio.gather(
            driver.advance(started.id), other.advance(started.id), other.tick(), driver.tick()
        )
    page = await services.optimizations.results(actor, started.id, PageRequest(first=100))
    assert sorted(r.number for r in page.items) == [0, 1, 2, 3]
    runs = await services.runs.list_runs(actor, PageRequest(first=100), optimization_id=started.id)
    assert len(runs.items) == 4
    assert {run.idempotency_key for run in runs.items} == {f"opt:{started.id}:trial:{n}" for n in range(4)}
    cancelled = await services.optimizations.cancel(actor, started.id)
    assert cancelled.status is OptimizationStatus.CANCELLED
    runs = await services.runs.list_runs(actor, PageRequest(first=100), optimization_id=started.id)
    assert {run.status for run in runs.items} == {RunStatus.CANCELLED}


async def test_a_performance_tuning_turns_the_tuners_variants_into_results(
    services: Services, actor: Actor, tmp_path: Path
) -> None:
    cnn = await services.workflows.get_by_name(actor, "digits-cnn")
    with pytest.raises(BadInput) as refused:
        bad = OptimizationSpec(
            cnn.id, OptimizationKind.PERFORMANCE_TUNING, space={"variants": ["warp-drive"]}
        )
        await services.optimizations.start(actor, None, bad)
    assert refused.value.details["path"] == "space"
    spec = OptimizationSpec(
        cnn.id,
        OptimizationKind.PERFORMANCE_TUNING,
        space={"variants": ["channels-last"], "steps": 8, "warmup": 2, "threads": [1]},
    )
    driver = services.optimization_driver
    assert driver is not None
    driver.interval = 0.2
    async with executors(services, tmp_path, slots=1), driving(driver):
        started = await services.optimizations.start(actor, None, spec)
        done = await finished(services, actor, started.id, within=120)
    assert done.status is OptimizationStatus.SUCCEEDED, done.error
    page = await services.optimizations.results(actor, done.id, PageRequest(first=100))
    names = {r.config["variant"] for r in page.items}
    assert names == {"eager-fp32", "channels-last"}
    best = await services.optimizations.best(actor, done.id)
    assert best is not None and best == page.items[0]
    assert best.metrics["within_tolerance"] and best.value == max(
        r.value or 0 for r in page.items if r.metrics.get("within_tolerance")
    )
    assert {r.run_id for r in page.items} == {page.items[0].run_id}  # one run of the tuner measured them
