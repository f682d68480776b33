"""Multi-node runs on production executors: gang placement across ``ExecutorWorker``s (the executor of
``ptw worker``) on the real Redis and PostgreSQL, each node a real runner whose ranks train with DDP
(gloo)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ptw.domain.runs import RunStatus
from ptw.domain.tenancy import Actor, Role
from ptw.executors.worker import ExecutorWorker
from ptw.infra.bootstrap import Services
from ptw.lifecycle import background_services
from ptw.worker import executor_worker
from tests.fixtures.production import production_services
from tests.fixtures.runs import finished, start_run, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REPO = Path(__file__).resolve().parents[2]
TRAINS = "tests.workflows.ddp:trains"
StartWorker = Callable[..., Awaitable[ExecutorWorker]]


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    async with production_services(tmp_path) as services, background_services(services):
        yield services


@pytest.fixture
async def actor(services: Services) -> Actor:
    issued = await services.access.bootstrap_key("workers", Role.ADMIN)
    return await services.access.authenticate(issued.secret)


@pytest.fixture
async def start_worker(services: Services) -> AsyncIterator[StartWorker]:
    workers: list[ExecutorWorker] = []

    async def start() -> ExecutorWorker:
        name = f"node-{len(workers)}"  # named before starting: workers may start together
        worker = executor_worker(services, 1, env={"PYTHONPATH": str(REPO)}, name=name, pools=())
        workers.append(worker)
        await worker.start()
        return worker

    yield start
    for worker in workers:
        await worker.stop(grace=3)


async def steps(services: Services, actor: Actor, run_id: str, key: str) -> list[tuple[int, float]]:
    series = await services.metrics.series(actor, run_id, key, max_points=10_000)
    return [(p.step, p.value) for p in series.points]


async def test_a_two_node_run_trains_with_ddp_across_two_workers_and_succeeds(
    services: Services, actor: Actor, start_worker: StartWorker
) -> None:
    await asyncio.gather(start_worker(), start_worker())
    run = await start_run(services, actor, TRAINS, {"steps": 10}, processes_per_node=1, nodes=2)
    run = await finished(services, actor, run.id, within=120)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.attempt == 1
    assert run.summary is not None
    assert run.summary["rank"] == 0 and run.summary["world_size"] == 2 and run.summary["weights_agree"]
    assert run.device is not None and run.device.endswith(" x2")
    assert [step for step, _ in await steps(services, actor, run.id, "loss")] == list(range(10))


async def test_a_two_node_run_with_one_worker_waits_says_so_and_holds_nothing(
    services: Services, actor: Actor, start_worker: StartWorker
) -> None:
    await start_worker()
    gang = await start_run(services, actor, TRAINS, {"steps": 4}, processes_per_node=1, nodes=2)
    gang = await wait_for(services, actor, gang.id, lambda r: r.error is not None, within=60)
    assert gang.status is RunStatus.QUEUED and gang.executor is None
    assert gang.error is not None and "needs 2 executors" in gang.error and "holds none" in gang.error
    single = await start_run(services, actor, TRAINS, {"steps": 4}, processes_per_node=1)
    single = await finished(services, actor, single.id, within=60)  # the one worker is not held
    assert single.status is RunStatus.SUCCEEDED, single.error
    gang = await services.runs.get_run(actor, gang.id)
    assert gang.status is RunStatus.QUEUED and gang.attempt == 1
    await start_worker()  # a second executor comes: the gang is placed
    gang = await finished(services, actor, gang.id, within=120)
    assert gang.status is RunStatus.SUCCEEDED, gang.error


async def test_a_node_lost_mid_run_ends_the_attempt_and_the_run_resumes_from_its_checkpoint(
    services: Services, actor: Actor, start_worker: StartWorker
) -> None:
    workers = await asyncio.gather(start_worker(), start_worker())
    params = {"steps": 16, "every": 4, "step_seconds": 0.1}
    run = await start_run(services, actor, TRAINS, params, processes_per_node=1, nodes=2)

    async def past_a_checkpoint(run_id: str) -> bool:
        return len(await steps(services, actor, run_id, "step_attempt")) >= 9  # step 7 was checkpointed

    for _ in range(600):
        if await past_a_checkpoint(run.id):
            break
        await asyncio.sleep(0.1)
    run = await services.runs.get_run(actor, run.id)
    assert run.status is RunStatus.RUNNING and run.attempt == 1
    (other,) = [s for w in workers for s in w.slots if s.run_id == run.id and s.id != run.executor]
    other.kill()  # node 1's runner dies, as with its worker killed: its ranks die with it
    run = await finished(services, actor, run.id, within=120)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.attempt == 2
    assert run.summary is not None and run.summary["resumed_from"] >= 8
    logged = await steps(services, actor, run.id, "step_attempt")
    assert [step for step, _ in logged] == list(range(16))  # exactly one point per step
    assert {step for step, attempt in logged if attempt == 2.0} == set(range(run.summary["resumed_from"], 16))
