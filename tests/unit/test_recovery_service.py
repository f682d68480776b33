"""RecoveryService: runs whose executor is gone are retried as a new attempt, failed, or cancelled."""

from __future__ import annotations

import pytest

from ptw.domain.runs import Run, RunStatus
from ptw.domain.services import Outcome
from ptw.domain.tenancy import Actor, Role
from tests.fixtures.memory import MemoryWorld

S = RunStatus


@pytest.fixture
def world() -> MemoryWorld:
    return MemoryWorld()


@pytest.fixture
async def member(world: MemoryWorld) -> Actor:
    return await world.actor("demo", Role.MEMBER)


async def running(world: MemoryWorld, member: Actor, name: str = "train") -> Run:
    workflow = await world.workflow(member, name=name)
    run = await world.runs.start_run(member, workflow.id)
    assert await world.execution.claim(run.id, run.attempt, "executor-1") is not None
    await world.execution.mark_running(run.id, run.attempt, "cpu")
    return world.stored_run(run.id)


async def test_a_lost_run_is_queued_again_as_the_next_attempt(world: MemoryWorld, member: Actor) -> None:
    run = await running(world, member)
    changed = await world.recovery.recover_lost()
    assert [r.id for r in changed] == [run.id]
    stored = world.stored_run(run.id)
    assert (stored.status, stored.attempt, stored.executor) == (S.QUEUED, 2, None)
    assert (run.id, 2) in {(j.run_id, j.attempt) for j in world.queue.jobs}
    # the stale first attempt can no longer finish the run
    assert await world.execution.finish(run.id, 1, Outcome(S.SUCCEEDED)) is None
    assert world.stored_run(run.id).status is S.QUEUED


async def test_a_run_that_spent_its_attempts_fails_with_the_reason(world: MemoryWorld, member: Actor) -> None:
    run = await running(world, member)
    await world.recovery.recover_lost(reason="executor lost")  # attempt 2 queued
    assert await world.execution.claim(run.id, 2, "executor-2") is not None
    await world.recovery.recover_lost(reason="executor lost")
    stored = world.stored_run(run.id)
    assert stored.status is S.FAILED
    assert stored.error is not None and "executor lost" in stored.error and "2 attempts" in stored.error


async def test_a_run_being_cancelled_ends_cancelled(world: MemoryWorld, member: Actor) -> None:
    run = await running(world, member)
    await world.runs.cancel_run(member, run.id)
    await world.recovery.recover_lost()
    assert world.stored_run(run.id).status is S.CANCELLED


async def test_only_the_named_runs_are_touched(world: MemoryWorld, member: Actor) -> None:
    first = await running(world, member)
    second = await running(world, member, name="other")
    await world.recovery.recover_lost([second.id])
    assert world.stored_run(first.id).status is S.RUNNING
    assert world.stored_run(second.id).status is S.QUEUED


async def test_waiting_runs_are_enqueued_again_once(world: MemoryWorld, member: Actor) -> None:
    workflow = await world.workflow(member)
    run = await world.runs.start_run(member, workflow.id)
    calls = world.queue.calls
    assert await world.recovery.requeue_waiting() == 1
    assert await world.recovery.requeue_waiting() == 1
    assert world.queue.calls == calls + 2
    assert [j.attempt for j in world.queue.jobs if j.run_id == run.id] == [1]
