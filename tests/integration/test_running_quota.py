"""A project's running-runs quota: claims of its runs by several executors at once start no more than the
quota (PostgreSQL, the count under the project's lock), a run over it stays QUEUED with the reason, and
another project's runs start meanwhile on the executors it leaves free."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ptw.domain.runs import RunJob, RunStatus
from ptw.domain.services.execution import AtQuota, Outcome
from ptw.domain.tenancy import Actor, Role
from ptw.executors.pool import LocalExecutorPool
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.settings import Settings
from tests.fixtures.databases import fresh_postgres_url
from tests.fixtures.runs import finished, start_run, wait_for

WAITING = "waiting: project at its running-runs quota 1"


async def key_of(services: Services, project: str) -> Actor:
    issued = await services.access.bootstrap_key(project, Role.ADMIN)
    return await services.access.authenticate(issued.secret)


async def limit_running(services: Services, project: str, limit: int) -> None:
    await services.access.set_quota(
        project, max_queued_runs=None, max_optimizations=None, max_running_runs=limit
    )


@pytest.fixture
async def on_postgres(tmp_path: Path) -> AsyncIterator[Services]:
    async with fresh_postgres_url() as url:
        services = await bootstrap(Settings(data_dir=tmp_path, executors=0, database_url=url), migrate=True)
        try:
            yield services
        finally:
            await services.aclose()


async def test_racing_claims_start_no_more_than_the_quota(on_postgres: Services) -> None:
    services = on_postgres
    alpha = await key_of(services, "alpha")
    await limit_running(services, "alpha", 1)
    runs = [await start_run(services, alpha, "sleeps") for _ in range(4)]

    async def claim(run_id: str, executor: str) -> RunJob | AtQuota | None:
        try:
            return await services.execution.claim(run_id, 1, executor)
        except AtQuota as waiting:
            return waiting

    outcomes = await asyncio.gather(*(claim(r.id, f"executor-{i}") for i, r in enumerate(runs)))
    claimed = [o for o in outcomes if isinstance(o, RunJob)]
    assert len(claimed) == 1, outcomes
    assert all(isinstance(o, AtQuota) and str(o) == WAITING for o in outcomes if o not in claimed)
    states = {r.id: await services.runs.get_run(alpha, r.id) for r in runs}
    started = claimed[0].run_id
    assert states[started].status is RunStatus.STARTING and states[started].waiting is None
    assert all(
        s.status is RunStatus.QUEUED and s.waiting == WAITING for i, s in states.items() if i != started
    )

    # Another project is not bound by alpha's quota.
    beta = await key_of(services, "beta")
    other = await start_run(services, beta, "sleeps")
    assert await services.execution.claim(other.id, 1, "executor-beta") is not None

    # Once alpha's run ends, the next claim of a waiting one starts it, and its reason is cleared.
    await services.execution.mark_running(started, 1, "cpu")
    await services.execution.finish(started, 1, Outcome(RunStatus.SUCCEEDED, summary={}))
    waiting = next(r.id for r in runs if r.id != started)
    job = await services.execution.claim(waiting, 1, "executor-0")
    assert job is not None and job.run_id == waiting
    assert (await services.runs.get_run(alpha, waiting)).waiting is None


@pytest.fixture
def slots() -> int:
    return 2


async def test_a_project_at_its_quota_leaves_the_executors_to_others(
    services: Services, pool: LocalExecutorPool
) -> None:
    """Embedded pool of two slots: alpha (quota 1) queues two runs ahead of beta's one; alpha's second
    waits without holding the free slot, beta's run is taken by it, and alpha's second starts when its
    first ends."""
    alpha, beta = await key_of(services, "alpha"), await key_of(services, "beta")
    await limit_running(services, "alpha", 1)
    first = await start_run(services, alpha, "sleeps", {"seconds": 60})
    await wait_for(services, alpha, first.id, lambda r: r.status is RunStatus.RUNNING, within=60)
    second = await start_run(services, alpha, "sleeps", {"seconds": 60})
    held = await wait_for(services, alpha, second.id, lambda r: r.waiting is not None, within=30)
    assert held.status is RunStatus.QUEUED and held.waiting == WAITING
    others = await start_run(services, beta, "logs")
    assert (await finished(services, beta, others.id, within=60)).status is RunStatus.SUCCEEDED
    assert (await services.runs.get_run(alpha, second.id)).status is RunStatus.QUEUED

    await services.runs.cancel_run(alpha, first.id)
    await finished(services, alpha, first.id, within=60)
    started = await wait_for(services, alpha, second.id, lambda r: r.status is RunStatus.RUNNING, within=60)
    assert started.waiting is None
    await services.runs.cancel_run(alpha, second.id)
    await finished(services, alpha, second.id, within=60)
