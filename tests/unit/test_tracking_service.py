"""External runs (TrackingService): started RUNNING, kept alive by heartbeats, ended by the client, or
failed by the run monitor when the client's process goes silent; never touched by executor recovery."""

from __future__ import annotations

import pytest

from ptw.domain.errors import BadInput, Conflict, NotFound
from ptw.domain.events import RunChanged, RunLogged, run_topic
from ptw.domain.runs import Run, RunStatus
from ptw.domain.services.run_monitor import RunMonitor
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Actor, Role
from tests.fixtures.memory import MemoryWorld

S = RunStatus
EXTERNAL = WorkflowSpec("external", "ptw.executors.workflows.external:tracked_elsewhere", {"type": "object"})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def world() -> MemoryWorld:
    world = MemoryWorld()
    await world.workflows.install_builtins([EXTERNAL])
    return world


@pytest.fixture
async def member(world: MemoryWorld) -> Actor:
    return await world.actor("demo", Role.MEMBER)


async def external(world: MemoryWorld, member: Actor, **extra: object) -> Run:
    return await world.tracking.start(member, params={"lr": 3e-4}, **extra)  # type: ignore[arg-type]


async def test_an_external_run_starts_running_with_its_labels_and_no_executor(
    world: MemoryWorld, member: Actor
) -> None:
    run = await external(world, member, name="resnet-sweep-3", tags=["baseline"])
    assert (run.status, run.external, run.executor, run.name, run.tags) == (
        S.RUNNING,
        True,
        None,
        "resnet-sweep-3",
        ["baseline"],
    )
    assert run.heartbeat_at is not None and run.started_at is not None
    assert world.stored_run(run.id) == run and world.queue.calls == 0
    assert world.bus.events(RunChanged, run_topic(run.id))[-1].run == run
    again = await external(world, member, idempotency_key="k")
    assert await external(world, member, idempotency_key="k") == again
    with pytest.raises(BadInput):
        await world.tracking.start(member, params=[1, 2])  # type: ignore[arg-type]


async def test_heartbeats_keep_it_alive_and_carry_the_summary(world: MemoryWorld, member: Actor) -> None:
    run = await external(world, member)
    beat = await world.tracking.heartbeat(member, run.id, {"best": 0.9})
    assert beat.summary == {"best": 0.9} and beat.heartbeat_at is not None
    assert beat.heartbeat_at >= run.heartbeat_at  # type: ignore[operator]


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.FAILED, S.CANCELLED])
async def test_the_client_ends_it_once(world: MemoryWorld, member: Actor, status: RunStatus) -> None:
    run = await external(world, member)
    error = "Traceback ...\nValueError: boom" if status is S.FAILED else None
    done = await world.tracking.finish(member, run.id, status, error=error, summary={"acc": 1.0})
    assert (done.status, done.error, done.summary) == (status, error, {"acc": 1.0})
    assert done.finished_at is not None
    assert await world.tracking.finish(member, run.id, status) == world.stored_run(run.id)
    other = S.SUCCEEDED if status is not S.SUCCEEDED else S.FAILED
    if status is not S.CANCELLED:
        with pytest.raises(Conflict):
            await world.tracking.finish(member, run.id, other)
    with pytest.raises(BadInput):
        await world.tracking.finish(member, run.id, S.RUNNING)


async def test_a_cancelled_external_run_ends_cancelled_whatever_the_client_says(
    world: MemoryWorld, member: Actor
) -> None:
    run = await external(world, member)
    assert (await world.runs.cancel_run(member, run.id)).status is S.CANCELLING
    assert (await world.tracking.heartbeat(member, run.id)).status is S.CANCELLING
    assert (await world.tracking.finish(member, run.id, S.SUCCEEDED)).status is S.CANCELLED


async def test_runs_of_executors_and_other_projects_are_refused(world: MemoryWorld, member: Actor) -> None:
    workflow = await world.workflow(member)
    queued = await world.runs.start_run(member, workflow.id)
    with pytest.raises(BadInput):
        await world.tracking.heartbeat(member, queued.id)
    run = await external(world, member)
    outsider = await world.actor("elsewhere", Role.ADMIN)
    with pytest.raises(NotFound):
        await world.tracking.finish(outsider, run.id, S.SUCCEEDED)
    external_workflow = await world.workflows.get_by_name(member, "external")
    with pytest.raises(BadInput, match=r"ptw\.init"):
        await world.runs.start_run(member, external_workflow.id)


async def test_the_monitor_fails_a_silent_client_and_recovery_of_executors_leaves_it(
    world: MemoryWorld, member: Actor
) -> None:
    run = await external(world, member)
    assert await world.recovery.recover_lost() == []  # a server restart: the client's process lives on
    assert world.stored_run(run.id).status is S.RUNNING
    clock = Clock()
    monitor = RunMonitor(world.recovery, lost_after=20.0, clock=clock)
    assert await monitor.check() == []
    clock.now = 10.0
    await world.tracking.heartbeat(member, run.id)
    assert await monitor.check() == []
    clock.now = 29.0
    assert await monitor.check() == []  # the heartbeat at 10 s was seen: 19 s of silence so far
    clock.now = 31.0
    [failed] = await monitor.check()
    stored = world.stored_run(run.id)
    assert (failed.id, stored.status, stored.attempt) == (run.id, S.FAILED, 1)
    assert stored.error is not None and "stopped heartbeating" in stored.error
    assert world.queue.calls == 0
    lines = [e.message for e in world.bus.events(RunLogged, run_topic(run.id))]
    assert lines and "stopped heartbeating" in lines[-1]
    late = await world.tracking.heartbeat(member, run.id)
    assert late.status is S.FAILED  # the client learns it on its next beat
