"""ExecutionService (claim, run, finish exactly once) and PoolService (the pool as clients see it)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ptw.domain.clock import utcnow
from ptw.domain.events import RunChanged, RunLogged, project_topic, run_topic
from ptw.domain.executors import ExecutorState
from ptw.domain.runs import Run, RunStatus
from ptw.domain.services import Outcome
from ptw.domain.tenancy import Actor, Role
from tests.fixtures.memory import MemoryWorld

AT = datetime(2024, 1, 1, tzinfo=UTC)
S = RunStatus


@pytest.fixture
def world() -> MemoryWorld:
    return MemoryWorld()


@pytest.fixture
async def member(world: MemoryWorld) -> Actor:
    return await world.actor("demo", Role.MEMBER)


@pytest.fixture
async def run(world: MemoryWorld, member: Actor) -> Run:
    workflow = await world.workflow(member, timeout_seconds=30)
    return await world.runs.start_run(member, workflow.id, params={"lr": 0.5})


async def requeue(world: MemoryWorld, run_id: str) -> None:
    """What reconciliation does when an executor is lost."""
    async with world.db() as uow:
        run = await uow.runs.get(run_id, for_update=True)
        assert run is not None
        run.requeue(utcnow())
        await uow.runs.update(run)
        await uow.commit()


async def test_claim_starts_the_queued_attempt_once(world: MemoryWorld, run: Run) -> None:
    job = await world.execution.claim(run.id, 1, "exec-1")
    assert job is not None
    assert (job.run_id, job.attempt, job.params, job.timeout_seconds) == (run.id, 1, {"lr": 0.5}, 30)
    stored = world.stored_run(run.id)
    assert (stored.status, stored.executor) == (S.STARTING, "exec-1")
    last = world.bus.published[-1]
    assert set(last[0]) == {run_topic(run.id), project_topic(run.project_id)}
    assert isinstance(last[1], RunChanged) and last[1].run.status is S.STARTING
    published = len(world.bus.published)
    assert await world.execution.claim(run.id, 1, "exec-2") is None  # a duplicate delivery
    assert world.stored_run(run.id).executor == "exec-1" and len(world.bus.published) == published


async def test_claim_ignores_unknown_runs_and_other_attempts(world: MemoryWorld, run: Run) -> None:
    assert await world.execution.claim("no-such-run", 1, "exec-1") is None
    assert await world.execution.claim(run.id, 2, "exec-1") is None
    assert world.stored_run(run.id).status is S.QUEUED


async def test_claim_of_a_cancelled_run_is_refused(world: MemoryWorld, member: Actor, run: Run) -> None:
    await world.runs.cancel_run(member, run.id)
    assert await world.execution.claim(run.id, 1, "exec-1") is None


async def test_a_new_attempt_resumes_from_the_latest_checkpoint(world: MemoryWorld, run: Run) -> None:
    await world.execution.claim(run.id, 1, "exec-1")
    await world.execution.mark_running(run.id, 1, "cuda:0")
    await world.execution.add_checkpoint(run.id, 1, 10, "file:///ckpt/10", 100)
    await world.execution.add_checkpoint(run.id, 1, 20, "file:///ckpt/20", 100)
    await requeue(world, run.id)
    assert await world.execution.claim(run.id, 1, "exec-2") is None
    job = await world.execution.claim(run.id, 2, "exec-2")
    assert job is not None and (job.attempt, job.checkpoint_uri) == (2, "file:///ckpt/20")


async def test_mark_running_stamps_device_and_start(world: MemoryWorld, run: Run) -> None:
    await world.execution.claim(run.id, 1, "exec-1")
    entered = utcnow()
    marked = await world.execution.mark_running(run.id, 1, "cuda:0", entered)
    assert marked is not None
    stored = world.stored_run(run.id)
    assert (stored.status, stored.device, stored.started_at) == (S.RUNNING, "cuda:0", entered)
    assert await world.execution.mark_running(run.id, 2, "cuda:1") is None
    assert world.stored_run(run.id).device == "cuda:0"
    assert await world.execution.status(run.id) is S.RUNNING
    assert await world.execution.status("no-such-run") is None


async def test_finish_writes_the_end_once(world: MemoryWorld, run: Run) -> None:
    await world.execution.claim(run.id, 1, "exec-1")
    await world.execution.mark_running(run.id, 1, "cpu")
    done = await world.execution.finish(run.id, 1, Outcome(S.SUCCEEDED, summary={"acc": 0.9}))
    assert done is not None and done.status is S.SUCCEEDED
    stored = world.stored_run(run.id)
    assert stored.summary == {"acc": 0.9} and stored.finished_at is not None
    published = len(world.bus.published)
    assert await world.execution.finish(run.id, 1, Outcome(S.FAILED, error="late")) is None
    assert world.stored_run(run.id) == stored and len(world.bus.published) == published


async def test_finish_of_a_stale_attempt_is_ignored(world: MemoryWorld, run: Run) -> None:
    await world.execution.claim(run.id, 1, "exec-1")
    await requeue(world, run.id)
    assert await world.execution.finish(run.id, 1, Outcome(S.FAILED, error="lost")) is None
    stored = world.stored_run(run.id)
    assert (stored.status, stored.attempt, stored.error) == (S.QUEUED, 2, None)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (S.FAILED, S.CANCELLED),
        (S.PRUNED, S.CANCELLED),
        (S.CANCELLED, S.CANCELLED),
        (S.SUCCEEDED, S.SUCCEEDED),
    ],
)
async def test_finish_while_cancelling(
    world: MemoryWorld, member: Actor, run: Run, outcome: RunStatus, expected: RunStatus
) -> None:
    await world.execution.claim(run.id, 1, "exec-1")
    await world.execution.mark_running(run.id, 1, "cpu")
    await world.runs.cancel_run(member, run.id)
    done = await world.execution.finish(run.id, 1, Outcome(outcome, error="stopped"))
    assert done is not None and world.stored_run(run.id).status is expected


@pytest.mark.parametrize("outcome", [S.SUCCEEDED, S.PRUNED])
async def test_a_good_end_straight_from_starting_goes_through_running(
    world: MemoryWorld, run: Run, outcome: RunStatus
) -> None:
    await world.execution.claim(run.id, 1, "exec-1")
    await world.execution.finish(run.id, 1, Outcome(outcome))
    stored = world.stored_run(run.id)
    assert stored.status is outcome and stored.started_at is not None and stored.finished_at is not None


async def test_a_failure_while_starting_never_started(world: MemoryWorld, run: Run) -> None:
    await world.execution.claim(run.id, 1, "exec-1")
    await world.execution.finish(run.id, 1, Outcome(S.FAILED, error="import error"))
    stored = world.stored_run(run.id)
    assert (stored.status, stored.error, stored.started_at) == (S.FAILED, "import error", None)


@pytest.mark.parametrize("outcome", [S.SUCCEEDED, S.FAILED, S.PRUNED])
async def test_an_end_given_the_device_writes_the_start_the_executor_had_not_written_yet(
    world: MemoryWorld, run: Run, outcome: RunStatus
) -> None:
    """A run that ends moments after its function was entered is marked running by its end, in one
    transaction: started, on its device (the attempt too), then ended; a failure included."""
    await world.execution.claim(run.id, 1, "exec-1")
    published = len(world.bus.published)
    entered = utcnow()
    done = await world.execution.finish(run.id, 1, Outcome(outcome, error="boom"), "cuda:0", entered)
    assert done is not None
    stored = world.stored_run(run.id)
    assert (stored.status, stored.device, stored.started_at) == (outcome, "cuda:0", entered)
    assert stored.finished_at is not None and stored.finished_at >= entered
    assert len(world.bus.published) == published + 1  # one change told: the end
    [attempt] = (await world.runs.attempts(await world.actor("demo"), [run.id]))[run.id]
    assert (attempt.device, attempt.ended_at is not None) == ("cuda:0", True)


async def test_an_end_given_the_device_leaves_a_start_already_written_as_it_was(
    world: MemoryWorld, run: Run
) -> None:
    await world.execution.claim(run.id, 1, "exec-1")
    marked = await world.execution.mark_running(run.id, 1, "cpu")
    assert marked is not None
    await world.execution.finish(run.id, 1, Outcome(S.SUCCEEDED), device="cpu")
    stored = world.stored_run(run.id)
    assert (stored.status, stored.device, stored.started_at) == (S.SUCCEEDED, "cpu", marked.started_at)


async def test_log_lines_go_to_the_run_topic_only(world: MemoryWorld, run: Run) -> None:
    await world.execution.log(run.id, run.project_id, "epoch 1", "stdout")
    [(topics, event)] = [(t, e) for t, e in world.bus.published if isinstance(e, RunLogged)]
    assert topics == (run_topic(run.id),)
    assert isinstance(event, RunLogged) and (event.message, event.stream) == ("epoch 1", "stdout")


def executor(ident: str, busy: bool) -> ExecutorState:
    return ExecutorState(id=ident, resource_classes=("cpu",), busy=busy, seen_at=AT)


async def test_pool_state_counts_workers_and_queue(world: MemoryWorld, member: Actor) -> None:
    workflow = await world.workflow(member)
    gpu = await world.workflow(member, "gpu-train", gpus=1)
    for wf in [workflow, workflow, workflow, gpu]:
        await world.runs.start_run(member, wf.id)
    await world.registry.announce(executor("b", busy=True))
    await world.registry.announce(executor("a", busy=False))
    state = await world.pool.state()
    assert (state.workers, state.busy, state.queue_depth) == (2, 1, 4)
    assert state.queue_by_class == {"cpu": 3, "gpu": 1}
    assert state.desired_workers == 4  # busy + waiting = 5, capped at max_workers
    assert [e.id for e in state.executors] == ["a", "b"]


async def test_pool_state_of_an_idle_pool_wants_the_minimum(world: MemoryWorld) -> None:
    state = await world.pool.state()
    assert (state.workers, state.busy, state.queue_depth, state.desired_workers) == (0, 0, 0, 0)
    world.pool.min_workers = 1
    assert (await world.pool.state()).desired_workers == 1


async def test_pool_never_wants_fewer_than_the_busy_ones_above_max(world: MemoryWorld) -> None:
    for i in range(6):
        await world.registry.announce(executor(f"e{i}", busy=True))
    assert (await world.pool.state()).desired_workers == 6
