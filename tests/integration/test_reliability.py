"""Reliability against the real PostgreSQL and Redis: heartbeats, the run monitor (with several replicas),
retries without double effects, hand-backs by draining executors, and the queue rebuilt after Redis lost it.

Production services (arq queue, Redis bus) on a fresh database and Redis prefix per test; the monitor gets
a fake clock, so "silent for 20 s" takes no time. Real processes are in tests/e2e/test_faults.py."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ptw.domain.clock import utcnow
from ptw.domain.events import RunLogged, run_topic
from ptw.domain.executors import ExecutorState
from ptw.domain.runs import Run, RunStatus
from ptw.domain.services.execution import Outcome
from ptw.domain.services.recovery import Silence
from ptw.domain.services.run_monitor import PlacementWatch, RunMonitor
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Actor, Role
from ptw.executors.pool import LocalExecutorPool
from ptw.infra import redis_keys
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.queue.arq_queue import ArqJobQueue
from ptw.infra.settings import Settings
from tests.fixtures.production import production_services

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REPO = Path(__file__).resolve().parents[2]
S = RunStatus


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    async with production_services(tmp_path) as services:
        yield services


@pytest.fixture
async def actor(services: Services) -> Actor:
    issued = await services.access.bootstrap_key("reliability", Role.ADMIN)
    return await services.access.authenticate(issued.secret)


async def start_run(services: Services, actor: Actor, function: str = "sample:sleeps", **spec: object) -> Run:
    name = f"{function.replace(':', '-')}-{secrets.token_hex(3)}"
    workflow = await services.workflows.register(
        actor,
        None,
        WorkflowSpec(name=name, entrypoint=f"tests.workflows.{function}", **spec),  # type: ignore[arg-type]
    )
    return await services.runs.start_run(actor, workflow.id)


async def running(services: Services, actor: Actor, executor: str = "worker-a-0") -> Run:
    run = await start_run(services, actor)
    assert await services.execution.claim(run.id, 1, executor) is not None
    marked = await services.execution.mark_running(run.id, 1, "cpu")
    assert marked is not None
    return await stored(services, actor, run.id)


async def stored(services: Services, actor: Actor, run_id: str) -> Run:
    return await services.runs.get_run(actor, run_id)


async def queued_attempts(services: Services, run_id: str) -> set[int]:
    queue = services.queue
    assert isinstance(queue, ArqJobQueue)
    ids = {j.decode() for j in await queue.arq.zrange(queue.queue_name("cpu"), 0, -1)}
    return {a for a in range(1, 6) if redis_keys.run_job_id(queue.prefix, run_id, a) in ids}


async def test_a_heartbeat_is_written_by_the_executor_of_the_attempt_only(
    services: Services, actor: Actor
) -> None:
    run = await running(services, actor)
    assert run.heartbeat_at is not None  # the claim is the first sign of life
    assert await services.execution.heartbeat(run.id, 1, "worker-a-0")
    assert (await stored(services, actor, run.id)).heartbeat_at != run.heartbeat_at
    assert not await services.execution.heartbeat(run.id, 1, "worker-b-0")  # not its executor
    assert not await services.execution.heartbeat(run.id, 2, "worker-a-0")  # not its attempt


async def test_the_monitor_retries_an_attempt_whose_heartbeat_stopped_and_says_why(
    services: Services, actor: Actor
) -> None:
    run = await running(services, actor)
    clock = Clock()
    monitor = RunMonitor(services.recovery, lost_after=20, clock=clock)
    lines: list[str] = []

    async def follow() -> None:
        async with services.bus.subscribe([run_topic(run.id)]) as events:
            subscribed.set()
            async for event in events:
                if isinstance(event, RunLogged):
                    lines.append(event.message)

    subscribed = asyncio.Event()
    following = asyncio.create_task(follow())
    await subscribed.wait()
    assert await monitor.check() == []
    clock.now += 19
    assert await monitor.check() == []  # not silent long enough
    clock.now += 1
    [lost] = await monitor.check()
    assert (lost.id, lost.status, lost.attempt, lost.executor) == (run.id, S.QUEUED, 2, None)
    assert lost.error is not None and "executor worker-a-0 lost (no heartbeat for 20 s)" in lost.error
    assert 2 in await queued_attempts(services, run.id)  # attempt 2 is enqueued
    for _ in range(50):
        if lines:
            break
        await asyncio.sleep(0.02)
    following.cancel()
    assert lines and "retrying as attempt 2" in lines[0]


async def test_an_executor_that_keeps_beating_is_never_judged_lost(services: Services, actor: Actor) -> None:
    run = await running(services, actor)
    clock = Clock()
    monitor = RunMonitor(services.recovery, lost_after=20, clock=clock)
    for _ in range(5):
        assert await monitor.check() == []
        assert await services.execution.heartbeat(run.id, 1, "worker-a-0")
        clock.now += 15
    assert (await stored(services, actor, run.id)).status is S.RUNNING


async def test_a_monitor_that_lost_the_database_waits_a_full_period_before_judging(
    services: Services, actor: Actor
) -> None:
    run = await running(services, actor)
    clock = Clock()
    monitor = RunMonitor(services.recovery, lost_after=20, clock=clock)
    await monitor.check()
    real_active = services.recovery.active

    async def unreachable() -> list[Run]:
        raise ConnectionError("the database is down")

    services.recovery.active = unreachable  # type: ignore[method-assign]
    clock.now += 60  # a long outage: no heartbeat could be written either
    with pytest.raises(ConnectionError):
        await monitor.check()
    services.recovery.active = real_active  # type: ignore[method-assign]
    assert await monitor.check() == []  # the executor gets lost_after to beat again
    assert await services.execution.heartbeat(run.id, 1, "worker-a-0")
    clock.now += 20
    assert await monitor.check() == []
    assert (await stored(services, actor, run.id)).status is S.RUNNING


async def test_two_replicas_judging_the_same_silence_retry_the_run_once(
    services: Services, actor: Actor
) -> None:
    run = await running(services, actor)
    silence = Silence(run.id, 1, run.heartbeat_at, run.executor)
    results = await asyncio.gather(
        *(services.recovery.recover_silent([silence], "no heartbeat") for _ in range(4))
    )
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    after = await stored(services, actor, run.id)
    assert (after.status, after.attempt) == (S.QUEUED, 2)


async def test_a_stale_judgement_leaves_a_run_another_executor_took_alone(
    services: Services, actor: Actor
) -> None:
    run = await running(services, actor)
    silence = Silence(run.id, 1, run.heartbeat_at, run.executor)
    assert await services.recovery.recover_silent([silence], "no heartbeat")  # attempt 2 queued
    assert await services.execution.claim(run.id, 2, "worker-b-0") is not None
    assert await services.recovery.recover_silent([silence], "no heartbeat") == []  # judged attempt 1
    beat = Silence(run.id, 2, (await stored(services, actor, run.id)).heartbeat_at)
    assert await services.execution.heartbeat(run.id, 2, "worker-b-0")
    assert await services.recovery.recover_silent([beat], "no heartbeat") == []  # it beat since
    after = await stored(services, actor, run.id)
    assert (after.status, after.attempt, after.executor) == (S.STARTING, 2, "worker-b-0")


async def test_drained_attempts_do_not_count_against_max_attempts(services: Services, actor: Actor) -> None:
    run = await running(services, actor)  # max_attempts is 3
    for attempt, executor in ((1, "worker-a-0"), (2, "worker-b-0")):
        released = await services.execution.release(run.id, attempt, "its worker is shutting down")
        assert released is not None and (released.status, released.drains) == (S.QUEUED, attempt)
        assert released.error is None
        assert await services.execution.claim(run.id, attempt + 1, executor) is not None
    assert await services.execution.release(run.id, 1, "stale") is None  # a stale hand-back is ignored
    for attempt in (3, 4):  # two failures after two drains: retried
        changed = await services.execution.finish(
            run.id, attempt, Outcome(S.FAILED, error="killed by SIGKILL", retryable=True)
        )
        assert changed is not None and (changed.status, changed.attempt) == (S.QUEUED, attempt + 1)
        assert await services.execution.claim(run.id, attempt + 1, "worker-c-0") is not None
    failed = await services.execution.finish(
        run.id, 5, Outcome(S.FAILED, error="killed by SIGKILL", retryable=True)
    )
    assert failed is not None and failed.status is S.FAILED
    assert (
        failed.error == "gave up after 3 attempts (and 2 handed back by stopping workers): killed by SIGKILL"
    )
    assert await queued_attempts(services, run.id) == {1, 2, 3, 4, 5}


async def test_an_error_of_the_training_code_is_not_retried(services: Services, actor: Actor) -> None:
    run = await running(services, actor)
    done = await services.execution.finish(run.id, 1, Outcome(S.FAILED, error="ValueError: boom"))
    assert done is not None and (done.status, done.attempt, done.error) == (S.FAILED, 1, "ValueError: boom")


async def test_queued_runs_whose_jobs_redis_lost_are_enqueued_again(services: Services, actor: Actor) -> None:
    runs = [await start_run(services, actor) for _ in range(3)]
    assert [await queued_attempts(services, r.id) for r in runs] == [{1}] * 3
    assert services.redis is not None
    prefix = services.settings.redis_prefix
    for pattern in (f"{prefix}:*", f"arq:*:{prefix}:*"):  # Redis restarted empty
        keys = [k async for k in services.redis.scan_iter(match=pattern, count=1000)]
        await services.redis.delete(*keys)
    assert [await queued_attempts(services, r.id) for r in runs] == [set()] * 3
    assert await services.recovery.requeue_waiting() == 3
    assert [await queued_attempts(services, r.id) for r in runs] == [{1}] * 3
    assert await services.recovery.requeue_waiting() == 3  # idempotent: still one job each
    assert await services.queue.depth() == {"cpu": 3, "gpu": 0}


async def test_runs_no_live_executor_can_take_say_why_they_wait(services: Services, actor: Actor) -> None:
    gpu = await start_run(services, actor, gpus=1)
    cpu = await start_run(services, actor)
    clock = Clock()
    watch = PlacementWatch(services.recovery, services.registry, waiting_after=0.5, clock=clock)
    await watch.check()
    await asyncio.sleep(0.6)  # the runs' own wait is measured on the database's timestamps
    clock.now += 0.5
    await services.registry.announce(ExecutorState("worker-a-0", ("cpu",), False, utcnow()))
    [flagged] = await watch.check()
    assert flagged.id == gpu.id and flagged.status is S.QUEUED
    assert flagged.error is not None and "no executor for resource class 'gpu'" in flagged.error
    assert (await stored(services, actor, cpu.id)).error is None
    assert await watch.check() == []  # said once


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Services]:
    services = await bootstrap(Settings(data_dir=tmp_path / "embedded", executors=0), migrate=True)
    yield services
    await services.aclose()


async def test_a_draining_pool_hands_its_run_back_and_the_next_attempt_resumes(
    embedded: Services, tmp_path: Path
) -> None:
    services = embedded
    issued = await services.access.bootstrap_key("drain", Role.ADMIN)
    actor = await services.access.authenticate(issued.secret)
    workflow = await services.workflows.register(
        actor, None, WorkflowSpec(name="steps", entrypoint="tests.workflows.faults:steps")
    )
    params = {"steps": 150, "step_seconds": 0.02, "every": 1000}
    run = await services.runs.start_run(actor, workflow.id, params=params)

    def pool() -> LocalExecutorPool:
        return LocalExecutorPool(
            services.execution,
            services.metrics,
            services.bus,
            services.local_queue,
            services.registry,
            tmp_path / "artifacts",
            slots=1,
            env={"PYTHONPATH": str(REPO)},
        )

    first = pool()
    await first.start()
    for _ in range(600):  # until it is training
        if (await stored(services, actor, run.id)).metric_keys:
            break
        await asyncio.sleep(0.05)
    assert await first.stop(grace=10) == [run.id]
    handed_back = await stored(services, actor, run.id)
    assert (handed_back.status, handed_back.attempt, handed_back.drains) == (S.QUEUED, 2, 1)
    [checkpoint] = await services.runs.checkpoints(actor, run.id)  # saved on ctx.stopping
    assert checkpoint.attempt == 1 and checkpoint.step is not None
    second = pool()
    await second.start()
    try:
        for _ in range(600):
            done = await stored(services, actor, run.id)
            if done.status.terminal:
                break
            await asyncio.sleep(0.05)
    finally:
        await second.stop(grace=3)
    assert done.status is S.SUCCEEDED, done.error
    assert done.summary == {"attempt": 2, "resumed_from": checkpoint.step + 1, "steps": 150}
    series = await services.metrics.series_of(run.id, "x", max_points=1000)
    assert [p.step for p in series.points] == list(range(150))
