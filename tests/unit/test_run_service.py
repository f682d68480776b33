"""RunService: starting runs (params, queueing, idempotency), cancelling, and listing them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ptw.domain.errors import BadInput, Conflict, Forbidden, NotFound
from ptw.domain.events import RunChanged, project_topic, run_topic
from ptw.domain.ports import PageRequest
from ptw.domain.runs import RunStatus
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Actor, Role
from ptw.domain.workflows import Workflow
from tests.fixtures.memory import MemoryWorld

SCHEMA = {
    "type": "object",
    "properties": {
        "lr": {"type": "number", "exclusiveMinimum": 0},
        "epochs": {"type": "integer", "minimum": 1},
        "layers": {"type": "array", "items": {"type": "integer"}},
    },
    "additionalProperties": False,
}
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def world() -> MemoryWorld:
    return MemoryWorld()


@pytest.fixture
async def member(world: MemoryWorld) -> Actor:
    return await world.actor("demo", Role.MEMBER)


@pytest.fixture
async def workflow(world: MemoryWorld, member: Actor) -> Workflow:
    return await world.workflow(
        member, params_schema=SCHEMA, defaults={"lr": 0.1, "epochs": 3}, timeout_seconds=600
    )


async def test_start_run_merges_defaults_and_queues_one_job(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    run = await world.runs.start_run(member, workflow.id, params={"epochs": 5})
    assert run.params == {"lr": 0.1, "epochs": 5}
    assert (run.status, run.attempt, run.project_id) == (RunStatus.QUEUED, 1, member.project_ids[0])
    assert world.stored_run(run.id) == run
    assert world.queue.calls == 1
    [job] = world.queue.jobs
    assert (job.run_id, job.attempt, job.params) == (run.id, 1, run.params)
    assert job.entrypoint == workflow.entrypoint
    assert (job.resource_class, job.timeout_seconds, job.checkpoint_uri) == ("cpu", 600, None)


async def test_start_run_publishes_on_run_and_project_topics(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    run = await world.runs.start_run(member, workflow.id)
    [(topics, event)] = world.bus.published
    assert set(topics) == {run_topic(run.id), project_topic(run.project_id)}
    assert isinstance(event, RunChanged) and event.run.id == run.id


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"lr": 0}, "params.lr"),
        ({"epochs": "many"}, "params.epochs"),
        ({"layers": [64, "wide"]}, "params.layers[1]"),
        ({"unknown": 1}, "params"),
    ],
)
async def test_start_run_refuses_bad_params_with_their_path(
    world: MemoryWorld, member: Actor, workflow: Workflow, params: dict[str, Any], path: str
) -> None:
    with pytest.raises(BadInput) as caught:
        await world.runs.start_run(member, workflow.id, params=params)
    assert caught.value.details == {"field": "params", "path": path}
    assert caught.value.message.startswith(path + ":")
    assert world.db.state.runs == {} and world.queue.calls == 0 and world.bus.published == []


async def test_start_run_refuses_params_that_are_not_an_object(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    params: Any = [1]
    with pytest.raises(BadInput):
        await world.runs.start_run(member, workflow.id, params=params)


async def test_idempotency_key_returns_the_earlier_run_without_queueing_again(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    first = await world.runs.start_run(member, workflow.id, params={"epochs": 2}, idempotency_key="k-1")
    again = await world.runs.start_run(member, workflow.id, params={"epochs": 9}, idempotency_key="k-1")
    assert again.id == first.id and again.params == {"lr": 0.1, "epochs": 2}
    assert len(world.db.state.runs) == 1
    assert world.queue.calls == 1 and len(world.bus.published) == 1
    other = await world.runs.start_run(member, workflow.id, idempotency_key="k-2")
    assert other.id != first.id and world.queue.calls == 2


@pytest.mark.parametrize("key", ["", "k" * 201])
async def test_idempotency_key_length_is_bounded(
    world: MemoryWorld, member: Actor, workflow: Workflow, key: str
) -> None:
    with pytest.raises(BadInput) as caught:
        await world.runs.start_run(member, workflow.id, idempotency_key=key)
    assert caught.value.details == {"field": "idempotencyKey"}


async def test_a_viewer_cannot_start_a_run(world: MemoryWorld, workflow: Workflow) -> None:
    viewer_key = await world.access.bootstrap_key("demo", Role.VIEWER)
    viewer = await world.access.authenticate(viewer_key.secret)
    with pytest.raises(Forbidden):
        await world.runs.start_run(viewer, workflow.id)
    assert world.db.state.runs == {} and world.queue.calls == 0


async def test_unknown_or_foreign_workflows_are_not_found(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    stranger = await world.actor("other", Role.ADMIN)
    for actor, workflow_id in [(member, "no-such-workflow"), (stranger, workflow.id)]:
        with pytest.raises(NotFound):
            await world.runs.start_run(actor, workflow_id)
    assert world.queue.calls == 0


async def test_a_builtin_runs_in_the_callers_project(world: MemoryWorld, member: Actor) -> None:
    [builtin] = await world.workflows.install_builtins([WorkflowSpec("digits", "x.y:train", gpus=1)])
    run = await world.runs.start_run(member, builtin.id)
    assert run.project_id == member.project_ids[0]
    assert world.queue.jobs[0].resource_class == "gpu" and run.resource_class == "gpu"


async def test_cancel_a_queued_run_cancels_it_at_once(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    run = await world.runs.start_run(member, workflow.id)
    cancelled = await world.runs.cancel_run(member, run.id)
    assert cancelled.status is RunStatus.CANCELLED and cancelled.finished_at is not None
    assert world.stored_run(run.id).status is RunStatus.CANCELLED
    last = world.bus.events(RunChanged, run_topic(run.id))[-1]
    assert isinstance(last, RunChanged) and last.run.status is RunStatus.CANCELLED


@pytest.mark.parametrize("started", [RunStatus.STARTING, RunStatus.RUNNING])
async def test_cancel_a_started_run_asks_its_executor(
    world: MemoryWorld, member: Actor, workflow: Workflow, started: RunStatus
) -> None:
    run = await world.runs.start_run(member, workflow.id)
    await world.execution.claim(run.id, 1, "exec-1")
    if started is RunStatus.RUNNING:
        await world.execution.mark_running(run.id, 1, "cpu")
    assert (await world.runs.cancel_run(member, run.id)).status is RunStatus.CANCELLING
    assert world.stored_run(run.id).status is RunStatus.CANCELLING
    published = len(world.bus.published)
    assert (await world.runs.cancel_run(member, run.id)).status is RunStatus.CANCELLING
    assert len(world.bus.published) == published


async def test_cancel_a_finished_run_is_a_conflict_and_changes_nothing(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    run = await world.runs.start_run(member, workflow.id)
    await world.runs.cancel_run(member, run.id)
    before, published = world.stored_run(run.id), len(world.bus.published)
    with pytest.raises(Conflict, match="already ended CANCELLED"):
        await world.runs.cancel_run(member, run.id)
    assert world.stored_run(run.id) == before and len(world.bus.published) == published


async def test_cancel_needs_member_and_visibility(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    run = await world.runs.start_run(member, workflow.id)
    viewer = await world.actor("demo", Role.VIEWER)
    stranger = await world.actor("other")
    with pytest.raises(Forbidden):
        await world.runs.cancel_run(viewer, run.id)
    with pytest.raises(NotFound):
        await world.runs.cancel_run(stranger, run.id)
    assert world.stored_run(run.id).status is RunStatus.QUEUED


async def test_runs_are_scoped_to_the_actors_projects(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    mine = [await world.runs.start_run(member, workflow.id) for _ in range(3)]
    stranger = await world.actor("other")
    theirs = await world.runs.start_run(stranger, (await world.workflow(stranger)).id)
    page = await world.runs.list_runs(member, PageRequest())
    assert {r.id for r in page.items} == {r.id for r in mine}
    assert [r.id for r in (await world.runs.list_runs(stranger, PageRequest())).items] == [theirs.id]
    with pytest.raises(NotFound):
        await world.runs.list_runs(stranger, PageRequest(), project_id=member.project_ids[0])
    with pytest.raises(NotFound):
        await world.runs.get_run(stranger, mine[0].id)
    assert await world.runs.get_many(stranger, [mine[0].id, theirs.id]) == [None, theirs]


async def test_list_runs_filters_and_pages_newest_first(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    runs = [await world.runs.start_run(member, workflow.id) for _ in range(5)]
    for i, run in enumerate(runs):  # distinct creation times, whatever the clock's resolution
        stored = world.stored_run(run.id)
        stored.created_at = T0 + timedelta(seconds=i)
        world.db.put(stored)
    await world.runs.cancel_run(member, runs[1].id)
    first = await world.runs.list_runs(member, PageRequest(first=3))
    rest = await world.runs.list_runs(member, PageRequest(first=3, after=first.items[-1].id))
    assert [r.id for r in first.items + rest.items] == [r.id for r in reversed(runs)]
    assert (first.has_next, rest.has_next) == (True, False)
    cancelled = await world.runs.list_runs(member, PageRequest(), statuses=[RunStatus.CANCELLED])
    assert [r.id for r in cancelled.items] == [runs[1].id]
    oldest = await world.runs.list_runs(member, PageRequest(first=1), newest_first=False)
    assert [r.id for r in oldest.items] == [runs[0].id]
