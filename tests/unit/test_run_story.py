"""A run keeps its story on the fakes: each attempt with how it ended, output lines within the cap."""

from __future__ import annotations

import pytest

from ptw.domain.clock import utcnow
from ptw.domain.errors import Conflict
from ptw.domain.events import RunLogged
from ptw.domain.metrics import MetricPoint
from ptw.domain.run_story import MAX_LOG_LINES, AttemptOutcome
from ptw.domain.runs import Run, RunStatus
from ptw.domain.services import Outcome
from ptw.domain.services.run_story import keep_output
from ptw.domain.tenancy import Actor, Role
from tests.fixtures.memory import MemoryWorld


@pytest.fixture
def world() -> MemoryWorld:
    return MemoryWorld()


@pytest.fixture
async def member(world: MemoryWorld) -> Actor:
    return await world.actor("demo", Role.MEMBER)


@pytest.fixture
async def run(world: MemoryWorld, member: Actor) -> Run:
    workflow = await world.workflow(member)
    return await world.runs.start_run(member, workflow.id)


async def test_each_attempt_is_kept_with_its_end(world: MemoryWorld, member: Actor, run: Run) -> None:
    world.execution.queue = world.queue  # a crash is retried at once
    await world.execution.claim(run.id, 1, "exec-1")
    await world.execution.mark_running(run.id, 1, "cpu")
    crash = Outcome(RunStatus.FAILED, error="the run's process was killed by SIGKILL", retryable=True)
    await world.execution.finish(run.id, 1, crash)
    await world.execution.claim(run.id, 2, "exec-2")
    await world.execution.release(run.id, 2, "its worker is shutting down")
    await world.execution.claim(run.id, 3, "exec-1")
    await world.execution.mark_running(run.id, 3, "cuda:0")
    await world.execution.finish(run.id, 3, Outcome(RunStatus.SUCCEEDED, summary={}))

    attempts = (await world.runs.attempts(member, [run.id]))[run.id]
    assert [(a.attempt, a.executor, a.device, a.outcome) for a in attempts] == [
        (1, "exec-1", "cpu", AttemptOutcome.CRASHED),
        (2, "exec-2", None, AttemptOutcome.DRAINED),
        (3, "exec-1", "cuda:0", AttemptOutcome.SUCCEEDED),
    ]
    assert attempts[0].reason == "the run's process was killed by SIGKILL"
    assert all(a.ended_at is not None and a.ended_at >= a.started_at for a in attempts)
    lines = [x.line for x in await world.runs.logs(member, run.id)]
    assert lines[0].startswith("attempt 1: the run's process was killed by SIGKILL; retrying as attempt 2")
    assert lines[1].startswith("attempt 2: its worker is shutting down; queued again as attempt 3")


async def test_a_timeout_is_told_apart_from_a_failure(world: MemoryWorld, member: Actor, run: Run) -> None:
    await world.execution.claim(run.id, 1, "exec-1")
    timeout = Outcome(RunStatus.FAILED, error="timed out after 5 s", how=AttemptOutcome.TIMED_OUT)
    await world.execution.finish(run.id, 1, timeout)
    (attempt,) = (await world.runs.attempts(member, [run.id]))[run.id]
    assert (attempt.outcome, attempt.reason) == (AttemptOutcome.TIMED_OUT, "timed out after 5 s")


async def test_output_is_stored_in_order_and_published_with_its_place(
    world: MemoryWorld, member: Actor, run: Run
) -> None:
    now = utcnow()
    await world.execution.log_lines(run.id, run.project_id, [("stdout", "a", now), ("stderr", "b", now)])
    await world.execution.log(run.id, run.project_id, "c")
    stored = await world.runs.logs(member, run.id)
    assert [(x.seq, x.stream, x.line) for x in stored] == [
        (1, "stdout", "a"),
        (2, "stderr", "b"),
        (3, "system", "c"),
    ]
    assert [x.line for x in await world.runs.logs(member, run.id, after_seq=1, first=1)] == ["b"]
    events = [e for _, e in world.bus.published if isinstance(e, RunLogged)]
    assert [(e.message, e.seq) for e in events] == [("a", 1), ("b", 2), ("c", 3)]


async def test_output_over_the_cap_is_cut_and_the_cut_is_said(world: MemoryWorld, run: Run) -> None:
    now = utcnow()
    async with world.db() as uow:
        await keep_output(uow, run.id, [("stdout", f"line {i}", now) for i in range(MAX_LOG_LINES - 1)])
        kept = await keep_output(uow, run.id, [("stdout", "last", now), ("stdout", "over", now)])
        assert kept[0].line == "last" and kept[1].line.startswith("output cut:")
        assert await keep_output(uow, run.id, [("stdout", "more", now)]) == []
        assert await uow.run_logs.last_seq(run.id) == MAX_LOG_LINES + 1


async def test_a_finished_run_takes_no_more_metrics(world: MemoryWorld, member: Actor, run: Run) -> None:
    point = MetricPoint("loss", 0, 1.0, utcnow())
    assert await world.metrics.log_metrics(member, run.id, [point]) == 1
    await world.runs.cancel_run(member, run.id)
    with pytest.raises(Conflict, match="already ended CANCELLED: it takes no more metrics"):
        await world.metrics.log_metrics(member, run.id, [point])
