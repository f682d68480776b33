"""A search optimizes the metric it names, on real PostgreSQL with real executors: a workflow that logs
several metrics and reports others has a different optimum for each, and each search finds its own in the
direction it is given; an objective the trials never log fails the search at its first trial."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ptw.domain.optimizations import (
    Direction,
    Optimization,
    OptimizationKind,
    OptimizationStatus,
    ResultState,
)
from ptw.domain.ports import PageRequest
from ptw.domain.services.optimizations import OptimizationSpec
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Actor, Role
from ptw.domain.workflows import Workflow
from ptw.executors.pool import LocalExecutorPool
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.settings import Settings
from ptw.lifecycle import prune_advisor
from tests.fixtures.databases import fresh_postgres_url

REPO = Path(__file__).resolve().parents[2]
XS = [-4.0, -1.0, 0.0, 2.0, 5.0, 6.0]
SPACE = {"x": {"type": "categorical", "choices": XS}}
SCHEMA = {
    "type": "object",
    "properties": {"x": {"type": "number"}, "steps": {"type": "integer"}, "delay": {"type": "number"}},
}
# What each named metric is worth at the end of a trial (the workflow's formulas at the last step).
FINAL = {
    "loss": lambda x: (x - 2.0) ** 2,
    "accuracy": lambda x: 1.0 - (x + 1.0) ** 2 / 100,
    "epoch_loss": lambda x: x**2,
}


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    async with fresh_postgres_url() as url:
        services = await bootstrap(Settings(data_dir=tmp_path, database_url=url, executors=0), migrate=True)
        driver = services.optimization_driver
        assert driver is not None
        driver.interval = 0.2
        pool = LocalExecutorPool(
            services.execution,
            services.metrics,
            services.bus,
            services.local_queue,
            services.registry,
            tmp_path / "artifacts",
            slots=3,
            env={"PYTHONPATH": str(REPO)},
            prune_advisor=prune_advisor(services),
        )
        await pool.start()
        task = asyncio.create_task(driver.run())
        try:
            yield services
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pool.stop(grace=3)
            await services.aclose()


@pytest.fixture
async def actor(services: Services) -> Actor:
    issued = await services.access.bootstrap_key("objective", Role.ADMIN)
    return await services.access.authenticate(issued.secret)


@pytest.fixture
async def workflow(services: Services, actor: Actor) -> Workflow:
    spec = WorkflowSpec(
        name="several-metrics",
        entrypoint="tests.workflows.several_metrics:train",
        params_schema=SCHEMA,
        defaults={"x": 0.0, "steps": 4, "delay": 0.01},
    )
    return await services.workflows.register(actor, None, spec)


async def search(
    services: Services, actor: Actor, workflow: Workflow, objective: str, direction: Direction
) -> Optimization:
    spec = OptimizationSpec(
        workflow.id,
        OptimizationKind.HYPERPARAMETER_SEARCH,
        objective=objective,
        direction=direction,
        space=SPACE,
        sampler="grid",
        pruner="none",
        max_trials=len(XS),
        max_parallel=3,
    )
    return await services.optimizations.start(actor, None, spec)


async def finished(services: Services, actor: Actor, optimization_id: str, within: float) -> Optimization:
    deadline = time.monotonic() + within
    while True:
        optimization = await services.optimizations.get(actor, optimization_id)
        if optimization.finished:
            return optimization
        assert time.monotonic() < deadline, f"still {optimization.status.value} after {within} s"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    ("objective", "direction", "best_x"),
    [
        ("loss", Direction.MINIMIZE, 2.0),
        ("loss", Direction.MAXIMIZE, -4.0),
        ("accuracy", Direction.MAXIMIZE, -1.0),
        ("epoch_loss", Direction.MINIMIZE, 0.0),  # reported by name only, never logged
    ],
)
async def test_a_search_finds_the_optimum_of_the_metric_it_names(
    services: Services,
    actor: Actor,
    workflow: Workflow,
    objective: str,
    direction: Direction,
    best_x: float,
) -> None:
    started = await search(services, actor, workflow, objective, direction)
    done = await finished(services, actor, started.id, within=120)

    assert done.status is OptimizationStatus.SUCCEEDED, done.error
    results = (await services.optimizations.results(actor, done.id, PageRequest(first=100))).items
    assert sorted(r.config["x"] for r in results) == XS  # the grid, each point once
    for result in results:
        assert result.state is ResultState.COMPLETE
        assert result.value == pytest.approx(FINAL[objective](result.config["x"])), result
    best = await services.optimizations.best(actor, done.id)
    assert best is not None and best.config["x"] == best_x
    assert results[0].id == best.id  # ranked best first in the search's direction


async def test_an_objective_no_trial_logs_fails_the_search_at_its_first_trial(
    services: Services, actor: Actor, workflow: Workflow
) -> None:
    started = await search(services, actor, workflow, "val_acc", Direction.MAXIMIZE)
    done = await finished(services, actor, started.id, within=60)

    assert done.status is OptimizationStatus.FAILED
    assert done.error is not None
    assert "never logged its objective 'val_acc'" in done.error
    assert "it logged: accuracy, loss, x" in done.error
    results = (await services.optimizations.results(actor, done.id, PageRequest(first=100))).items
    assert len(results) < len(XS)  # it stopped at once instead of running the whole grid
    assert not [r for r in results if r.state in (ResultState.RUNNING, ResultState.COMPLETE)]
