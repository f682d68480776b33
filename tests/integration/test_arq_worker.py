"""The production queue and executor: arq on the real Redis, runs claimed and stored in the real PostgreSQL.

Each test has its own PostgreSQL database and Redis key prefix, and an in-process ``ExecutorWorker`` (the
executor of ``ptw worker``) whose slots start real child runners."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from arq.jobs import Job

from ptw.domain.runs import Run, RunJob, RunStatus
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Actor, Role
from ptw.executors.fork_client import ForkServerClient
from ptw.executors.worker import ExecutorWorker
from ptw.infra import redis_keys
from ptw.infra.bootstrap import Services
from ptw.infra.queue.arq_queue import RUN_FUNCTION, ArqJobQueue
from ptw.lifecycle import background_services
from ptw.worker import executor_worker
from tests.fixtures.production import production_services

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = "tests.workflows.sample"


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    async with production_services(tmp_path) as services, background_services(services):
        yield services


@pytest.fixture
async def actor(services: Services) -> Actor:
    issued = await services.access.bootstrap_key("workers", Role.ADMIN)
    return await services.access.authenticate(issued.secret)


StartWorker = Callable[..., Awaitable[ExecutorWorker]]


@pytest.fixture
async def start_worker(services: Services) -> AsyncIterator[StartWorker]:
    workers: list[ExecutorWorker] = []

    async def start(slots: int = 1, pools: tuple[str, ...] = ()) -> ExecutorWorker:
        name = f"test-{len(workers)}"
        worker = executor_worker(services, slots, env={"PYTHONPATH": str(REPO)}, name=name, pools=pools)
        await worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        await worker.stop(grace=3)


async def start_run(
    services: Services, actor: Actor, function: str, params: dict[str, Any] | None = None, **resources: Any
) -> Run:
    name = f"{function}-{time.monotonic_ns()}"
    spec = WorkflowSpec(name=name, entrypoint=f"{SAMPLE}:{function}", **resources)
    workflow = await services.workflows.register(actor, None, spec)
    return await services.runs.start_run(actor, workflow.id, params=params)


async def wait_for(
    services: Services, actor: Actor, run_id: str, done: Callable[[Run], bool], within: float = 30
) -> Run:
    deadline = time.monotonic() + within
    while True:
        run = await services.runs.get_run(actor, run_id)
        if done(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} is still {run.status.value} after {within} s"
        await asyncio.sleep(0.05)


def queue_of(services: Services) -> ArqJobQueue:
    assert isinstance(services.queue, ArqJobQueue)
    return services.queue


def job(run_id: str, attempt: int, resource_class: str = "cpu") -> RunJob:
    return RunJob(run_id, "project", attempt, f"{SAMPLE}:counts", {}, resource_class, None)


async def test_an_enqueue_is_idempotent_per_run_and_attempt(services: Services) -> None:
    queue = queue_of(services)
    await queue.enqueue(job("r1", 1))
    await queue.enqueue(job("r1", 1))
    assert await queue.depth() == {"cpu": 1, "gpu": 0}
    await queue.enqueue(job("r1", 2))  # a retry is a new attempt: a new job
    await queue.enqueue(job("r2", 1))
    assert await queue.depth() == {"cpu": 3, "gpu": 0}
    ids = await queue.arq.zrange(queue.queue_name("cpu"), 0, -1)
    assert sorted(i.decode() for i in ids) == [
        redis_keys.run_job_id(queue.prefix, "r1", 1),
        redis_keys.run_job_id(queue.prefix, "r1", 2),
        redis_keys.run_job_id(queue.prefix, "r2", 1),
    ]


async def test_gpu_jobs_land_only_on_the_gpu_queue_and_a_cpu_worker_leaves_them(
    services: Services, actor: Actor, start_worker: StartWorker
) -> None:
    queue = queue_of(services)
    gpu_run = await start_run(services, actor, "enters", gpus=1)
    assert await queue.depth() == {"cpu": 0, "gpu": 1}
    worker = await start_worker()
    assert worker.resource_classes == ("cpu",)  # this machine has no GPU
    cpu_run = await start_run(services, actor, "enters")
    cpu_run = await wait_for(services, actor, cpu_run.id, lambda r: r.status.terminal)
    assert cpu_run.status is RunStatus.SUCCEEDED, cpu_run.error
    assert (await services.runs.get_run(actor, gpu_run.id)).status is RunStatus.QUEUED
    assert await queue.depth() == {"cpu": 0, "gpu": 1}
    state = await services.pool.state()
    assert [e.resource_classes for e in state.executors] == [("cpu",)]
    assert state.queue_by_class == {"cpu": 0, "gpu": 1}


async def test_a_worker_runs_a_run_to_success_with_its_metrics_in_postgresql(
    services: Services, actor: Actor, start_worker: StartWorker
) -> None:
    await start_worker()
    run = await start_run(services, actor, "logs", {"steps": 2000})
    run = await wait_for(services, actor, run.id, lambda r: r.status.terminal)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.executor is not None and run.executor.startswith("test-0-")
    deadline = time.monotonic() + 10  # production ingests the metric log behind the run
    while (series := await services.metrics.series_of(run.id, "loss", max_points=5000)).total < 2000:
        assert time.monotonic() < deadline, f"{series.total} of 2000 points stored"
        await asyncio.sleep(0.1)
    assert [p.step for p in series.points] == list(range(2000))


async def test_a_duplicate_delivery_does_not_start_a_second_child(
    services: Services, actor: Actor, start_worker: StartWorker, tmp_path: Path
) -> None:
    queue = queue_of(services)
    calls = tmp_path / "calls.txt"
    run = await start_run(services, actor, "counts", {"path": str(calls), "seconds": 0.5})
    # At-least-once delivery: the same attempt arrives a second time under another arq job.
    duplicate = f"{queue.prefix}:duplicate:{run.id}"
    await queue.arq.enqueue_job(
        RUN_FUNCTION, run.id, run.attempt, _job_id=duplicate, _queue_name=queue.queue_name("cpu")
    )
    await start_worker(slots=2)
    run = await wait_for(services, actor, run.id, lambda r: r.status.terminal)
    assert run.status is RunStatus.SUCCEEDED, run.error
    original = redis_keys.run_job_id(queue.prefix, run.id, run.attempt)
    results = [await Job(j, queue.arq).result(timeout=10) for j in (original, duplicate)]
    assert sorted(results) == [False, True]  # one delivery ran it, the other claimed nothing
    assert len(calls.read_text().splitlines()) == 1


async def test_a_cancel_reaches_a_run_on_a_worker(
    services: Services, actor: Actor, start_worker: StartWorker
) -> None:
    await start_worker()
    run = await start_run(services, actor, "sleeps", {"seconds": 60})
    await wait_for(services, actor, run.id, lambda r: r.status is RunStatus.RUNNING)
    asked = time.monotonic()
    await services.runs.cancel_run(actor, run.id)
    run = await wait_for(services, actor, run.id, lambda r: r.status.terminal, within=10)
    assert run.status is RunStatus.CANCELLED
    assert run.summary == {"cancelled": True}  # the training code saw ctx.cancelled and returned
    assert time.monotonic() - asked < 3


async def test_a_stopped_worker_requeues_its_run_as_the_next_attempt(
    services: Services, actor: Actor, start_worker: StartWorker
) -> None:
    worker = await start_worker()
    run = await start_run(services, actor, "sleeps", {"seconds": 60})
    await wait_for(services, actor, run.id, lambda r: r.status is RunStatus.RUNNING)
    assert await worker.stop(grace=3) == [run.id]
    run = await services.runs.get_run(actor, run.id)
    assert (run.status, run.attempt) == (RunStatus.QUEUED, 2)
    assert await services.registry.alive() == []
    assert await queue_of(services).depth() == {"cpu": 1, "gpu": 0}  # attempt 2 waits for a worker


async def test_a_pool_bound_worker_takes_its_pools_runs_and_never_another_pools(
    services: Services, actor: Actor, start_worker: StartWorker, tmp_path: Path
) -> None:
    calls = {"path": str(tmp_path / "calls")}
    research = await start_worker(pools=("research",))
    assert research.resource_classes == ("research/cpu",)
    own = await start_run(services, actor, "counts", calls, pool="research")
    shared = await start_run(services, actor, "counts", calls)
    other = await start_run(services, actor, "counts", calls, pool="vision")
    done = await wait_for(services, actor, own.id, lambda r: r.status.terminal, within=60)
    assert done.status is RunStatus.SUCCEEDED and done.executor is not None, done.error
    assert done.executor.startswith("test-0")
    await asyncio.sleep(2.0)  # several polls of the research queue: the others stay where they wait
    for run_id in (shared.id, other.id):
        assert (await services.runs.get_run(actor, run_id)).status is RunStatus.QUEUED
    depth = await queue_of(services).depth()
    assert depth["cpu"] == 1 and depth["vision/cpu"] == 1 and depth.get("research/cpu", 0) == 0
    await start_worker()  # the shared pool's worker takes the shared run, and only it
    done = await wait_for(services, actor, shared.id, lambda r: r.status.terminal, within=60)
    assert done.status is RunStatus.SUCCEEDED and done.executor is not None
    assert done.executor.startswith("test-1")
    assert (await services.runs.get_run(actor, other.id)).status is RunStatus.QUEUED


async def test_a_run_queued_behind_a_busy_slot_starts_when_the_slot_frees_not_at_the_next_poll(
    services: Services, actor: Actor
) -> None:
    """arq polls only while it has room; with its one slot busy it would sleep out its poll delay (30 s
    here) before it looked at the queue again. The worker wakes its poll when a job ends."""
    first = await start_run(services, actor, "sleeps", {"seconds": 1.5})
    worker = executor_worker(services, 1, env={"PYTHONPATH": str(REPO)}, name="prompt")
    worker.poll_delay = 30.0
    await worker.start()  # its first poll takes the first run
    try:
        await wait_for(services, actor, first.id, lambda r: r.status is RunStatus.RUNNING)
        second = await start_run(services, actor, "sleeps", {"seconds": 0})  # queued: the slot is busy
        ended = await wait_for(services, actor, first.id, lambda r: r.status.terminal)
        started = await wait_for(services, actor, second.id, lambda r: r.status.terminal, within=20)
        assert ended.status is RunStatus.SUCCEEDED and started.status is RunStatus.SUCCEEDED
        assert ended.finished_at is not None and started.started_at is not None
        assert (started.started_at - ended.finished_at).total_seconds() < 5  # not the 30 s poll
    finally:
        await worker.stop(grace=3)


async def test_a_fork_server_started_early_is_adopted_only_by_a_slot_it_fits(services: Services) -> None:
    worker = executor_worker(services, 1, env={"PYTHONPATH": str(REPO)}, name="early")
    slot, s = worker.slots[0], worker.services
    fitting = await ForkServerClient.spawn(s.artifacts_dir, threads=s.threads, env=s.runner_environ())
    other = await ForkServerClient.spawn(s.artifacts_dir, threads=s.threads, env={"PYTHONPATH": "/elsewhere"})
    try:
        await slot.adopt_fork_server(other)
        assert other.process.returncode is not None  # closed: it would import from the wrong place
        await slot.adopt_fork_server(fitting)
        await worker.start()  # the slot warms its runner from the adopted server
        assert slot._forks is fitting and fitting.alive
    finally:
        await worker.stop(grace=3)
