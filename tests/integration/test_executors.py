"""The local executor pool with real child runners against real services on SQLite: how runs end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ptw.domain.events import Event, RunChanged, RunLogged, run_topic
from ptw.domain.runs import RunStatus
from ptw.domain.tenancy import Actor, Role
from ptw.executors.pool import LocalExecutorPool
from ptw.executors.supervisor import SupervisionLimits
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.settings import Settings
from tests.fixtures.runs import finished, start_run, wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    services = await bootstrap(Settings(data_dir=tmp_path, executors=0), migrate=True)
    yield services
    await services.aclose()


@pytest.fixture
async def actor(services: Services) -> Actor:
    issued = await services.access.bootstrap_key("executors", Role.ADMIN)
    return await services.access.authenticate(issued.secret)


StartPool = Callable[..., Awaitable[LocalExecutorPool]]


@pytest.fixture
async def start_pool(services: Services, tmp_path: Path) -> AsyncIterator[StartPool]:
    pools: list[LocalExecutorPool] = []

    async def start(
        slots: int = 1, limits: SupervisionLimits | None = None, metrics: Any = None
    ) -> LocalExecutorPool:
        pool = LocalExecutorPool(
            services.execution,
            metrics or services.metrics,
            services.bus,
            services.queue,
            services.registry,
            tmp_path / "artifacts",
            slots=slots,
            env={"PYTHONPATH": str(REPO)},
            limits=limits,
        )
        await pool.start()
        pools.append(pool)
        return pool

    yield start
    for pool in pools:
        await pool.stop(grace=3)


@contextlib.asynccontextmanager
async def recorded(services: Services, run_id: str) -> AsyncIterator[list[Event]]:
    events: list[Event] = []

    async def collect() -> None:
        async with services.bus.subscribe([run_topic(run_id)]) as subscription:
            ready.set()
            async for event in subscription:
                events.append(event)

    ready = asyncio.Event()
    task = asyncio.create_task(collect())
    await ready.wait()
    try:
        yield events
    finally:
        task.cancel()


async def test_a_run_that_logs_succeeds_with_its_summary_and_every_point(
    services: Services, actor: Actor, start_pool: StartPool
) -> None:
    run = await start_run(services, actor, "logs", {"steps": 3000})
    async with recorded(services, run.id) as events:
        await start_pool()
        run = await finished(services, actor, run.id)
        await asyncio.sleep(0.1)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.device == "cpu" and run.started_at is not None
    assert run.summary is not None
    assert run.summary["steps"] == 3000 and run.summary["best"] == 0.5
    assert run.summary["obj"].startswith("<object object")
    for key in ("loss", "acc"):
        series = await services.metrics.series_of(run.id, key, max_points=10_000)
        assert series.total == 3000 and [p.step for p in series.points] == list(range(3000))
    assert (await services.metrics.series_of(run.id, "loss")).points[-1].value == pytest.approx(1 / 3000)
    lines = [(e.stream, e.message) for e in events if isinstance(e, RunLogged)]
    assert ("stdout", "trained 3000 steps") in lines
    assert any(stream == "system" and "'loss' at step 3000" in line for stream, line in lines)


async def test_a_run_ending_at_once_is_started_and_ended_in_one_write_and_a_longer_one_shows_running(
    services: Services, actor: Actor, start_pool: StartPool
) -> None:
    """RUNNING is written RUNNING_AFTER its function was entered: a run that returns sooner is ended with its
    start (one change told, device and start kept); one that lasts is RUNNING while it runs."""
    quick = await start_run(services, actor, "enters")
    async with recorded(services, quick.id) as events:
        await start_pool()
        quick = await finished(services, actor, quick.id)
        await asyncio.sleep(0.1)
    assert quick.status is RunStatus.SUCCEEDED, quick.error
    assert quick.device == "cpu" and quick.started_at is not None and quick.finished_at is not None
    assert quick.summary is not None and quick.started_at <= quick.finished_at
    assert abs(quick.started_at.timestamp() - quick.summary["entered_at"]) < 0.05  # when it was entered
    statuses = [e.run.status for e in events if isinstance(e, RunChanged)]
    assert statuses == [RunStatus.STARTING, RunStatus.SUCCEEDED]
    lasting = await start_run(services, actor, "sleeps", {"seconds": 1.0})
    running = await wait_for(services, actor, lasting.id, lambda r: r.status is RunStatus.RUNNING, 10)
    assert running.device == "cpu" and running.started_at is not None
    assert (await finished(services, actor, lasting.id)).status is RunStatus.SUCCEEDED


async def test_a_run_that_raises_fails_with_the_traceback_tail(
    services: Services, actor: Actor, start_pool: StartPool
) -> None:
    run = await start_run(services, actor, "raises")
    await start_pool()
    run = await finished(services, actor, run.id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None and run.error.startswith("ValueError: boom: the loss exploded\n")
    assert "_deep_failure" in run.error and len(run.error) <= 4100
    assert (await services.metrics.series_of(run.id, "loss")).total == 1  # logged before it raised


async def test_an_entrypoint_that_cannot_be_imported_fails_the_run(
    services: Services, actor: Actor, start_pool: StartPool
) -> None:
    run = await start_run(services, actor, "tests.workflows.missing:train")
    await start_pool()
    run = await finished(services, actor, run.id)
    assert run.status is RunStatus.FAILED
    assert run.error == (
        "cannot import entrypoint 'tests.workflows.missing:train': "
        "ModuleNotFoundError: No module named 'tests.workflows.missing'"
    )


@pytest.mark.parametrize(
    ("function", "code", "points"),
    [
        ("dies", 7, 0),
        # The point and the end of the messages may come together: both are handled, whatever their
        # order (an end taken while coalescing metrics is not lost).
        ("logs_then_dies", 5, 1),
    ],
)
async def test_a_child_that_dies_fails_the_run_with_its_exit_keeping_what_it_logged(
    services: Services, actor: Actor, start_pool: StartPool, function: str, code: int, points: int
) -> None:
    run = await start_run(services, actor, function)
    await start_pool()
    run = await finished(services, actor, run.id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None and f"exited with code {code} without a result" in run.error
    if function == "dies":
        assert run.error.endswith("going down")
    assert (await services.metrics.series_of(run.id, "loss")).total == points


async def test_cancelling_a_run_that_ignores_it_kills_the_child(
    services: Services, actor: Actor, start_pool: StartPool
) -> None:
    run = await start_run(services, actor, "hangs")
    pool = await start_pool()
    await wait_for(services, actor, run.id, lambda r: r.status is RunStatus.RUNNING, within=30)
    runner = pool.slots[0].runner
    assert runner is not None and runner.returncode is None
    asked = time.monotonic()
    await services.runs.cancel_run(actor, run.id)
    run = await finished(services, actor, run.id, within=10)
    assert run.status is RunStatus.CANCELLED
    assert time.monotonic() - asked < 6  # cancel grace, SIGTERM (ignored) grace, then SIGKILL
    assert runner.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(runner.pid, 0)


async def test_cancelling_a_run_that_watches_ctx_cancelled_ends_it_at_once(
    services: Services, actor: Actor, start_pool: StartPool
) -> None:
    run = await start_run(services, actor, "sleeps")
    await start_pool()
    await wait_for(services, actor, run.id, lambda r: r.status is RunStatus.RUNNING, within=30)
    asked = time.monotonic()
    await services.runs.cancel_run(actor, run.id)
    run = await finished(services, actor, run.id, within=10)
    assert run.status is RunStatus.CANCELLED and run.summary == {"cancelled": True}
    assert time.monotonic() - asked < 1.5


async def test_a_run_past_its_timeout_fails(services: Services, actor: Actor, start_pool: StartPool) -> None:
    run = await start_run(services, actor, "sleeps", {"seconds": 60}, timeout_seconds=1)
    await start_pool()
    run = await finished(services, actor, run.id)
    assert run.status is RunStatus.FAILED and run.error == "timed out after 1 s"


async def test_a_checkpoint_is_listed_and_resumed_from_by_the_next_attempt(
    services: Services, actor: Actor, start_pool: StartPool
) -> None:
    run = await start_run(services, actor, "checkpoints")
    pool = await start_pool()
    await wait_for(services, actor, run.id, lambda r: r.status is RunStatus.RUNNING, within=30)
    deadline = time.monotonic() + 10
    while not (checkpoints := await services.runs.checkpoints(actor, run.id)):
        assert time.monotonic() < deadline, "no checkpoint was recorded"
        await asyncio.sleep(0.05)
    [checkpoint] = checkpoints
    assert (checkpoint.attempt, checkpoint.step) == (1, 5) and checkpoint.uri.endswith(f"/{run.id}/a1-s5.pt")
    assert checkpoint.size_bytes > 0

    interrupted = await pool.stop(grace=3)  # the executor is lost mid-run ...
    assert interrupted == [run.id]
    await services.recovery.recover_lost(interrupted, "executor stopped")  # ... and the run retried
    await start_pool()
    run = await finished(services, actor, run.id)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.summary == {"resumed_step": 5, "weights": [0.0, 1.0, 2.0], "attempt": 2}


async def test_a_duplicate_delivery_does_not_run_the_job_twice(
    services: Services, actor: Actor, start_pool: StartPool, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    run = await start_run(services, actor, "counts", {"path": str(calls), "seconds": 0.5})
    queue = services.queue
    job = await queue.take(("cpu",))
    for _ in range(2):  # at-least-once delivery: the same attempt arrives twice
        queue.forget(job.run_id, job.attempt)
        await queue.enqueue(job)
    await start_pool(slots=2)
    run = await finished(services, actor, run.id)
    assert run.status is RunStatus.SUCCEEDED
    await asyncio.sleep(0.5)
    assert await queue.depth() == {"cpu": 0}  # both deliveries were taken
    assert len(calls.read_text().splitlines()) == 1


class FlakyMetrics:
    """The real metric service behind a database that refuses the first few writes."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real = real
        self.failures = failures

    async def record(self, run_id: str, points: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("database is restarting")
        return await self.real.record(run_id, points)


async def test_metrics_the_database_refused_for_a_moment_are_stored_later(
    services: Services, actor: Actor, start_pool: StartPool
) -> None:
    flaky = FlakyMetrics(services.metrics, failures=3)
    run = await start_run(services, actor, "logs", {"steps": 500})
    await start_pool(metrics=flaky)
    run = await finished(services, actor, run.id)
    assert run.status is RunStatus.SUCCEEDED and flaky.failures == 0
    assert (await services.metrics.series_of(run.id, "loss", max_points=1000)).total == 500
