"""WorkflowService: registering workflows, built-ins, and who can see which."""

from __future__ import annotations

from typing import Any

import pytest

from ptw.domain.errors import BadInput, Conflict, Forbidden, NotFound
from ptw.domain.ports import PageRequest
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Role
from tests.fixtures.memory import MemoryWorld

SCHEMA = {"type": "object", "properties": {"lr": {"type": "number", "exclusiveMinimum": 0}}}
BUILTINS = [
    WorkflowSpec(name="digits-mlp", entrypoint="ptw.executors.workflows.digits_mlp:train"),
    WorkflowSpec(name="digits-cnn", entrypoint="ptw.executors.workflows.digits_cnn:train", gpus=1),
]


@pytest.fixture
def world() -> MemoryWorld:
    return MemoryWorld()


async def test_register_stores_a_valid_workflow(world: MemoryWorld) -> None:
    actor = await world.actor("demo", Role.MEMBER)
    spec = WorkflowSpec("train", "pkg.mod:main", SCHEMA, {"lr": 0.1}, gpus=2, timeout_seconds=60)
    workflow = await world.workflows.register(actor, None, spec)
    assert (workflow.project_id, workflow.defaults, workflow.params_schema) == (
        actor.project_ids[0],
        {"lr": 0.1},
        SCHEMA,
    )
    assert workflow.resources.resource_class == "gpu" and workflow.resources.timeout_seconds == 60
    assert world.db.state.workflows[workflow.id] == workflow


async def test_register_without_a_schema_accepts_any_object(world: MemoryWorld) -> None:
    actor = await world.actor()
    workflow = await world.workflows.register(actor, None, WorkflowSpec("train", "pkg:main"))
    assert workflow.params_schema == {"type": "object"} and workflow.defaults == {}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (WorkflowSpec("Bad Name", "pkg:main"), "name"),
        (WorkflowSpec("", "pkg:main"), "name"),
        (WorkflowSpec("train", "pkg.main"), "entrypoint"),
        (WorkflowSpec("train", "pkg:main()"), "entrypoint"),
        (WorkflowSpec("train", "pkg:main", {"type": "no-such-type"}), "paramsSchema"),
        (WorkflowSpec("train", "pkg:main", SCHEMA, {"lr": -1}), "defaults"),
        (WorkflowSpec("train", "pkg:main", gpus=17), "gpus"),
        (WorkflowSpec("train", "pkg:main", timeout_seconds=0), "timeoutSeconds"),
    ],
)
async def test_register_refuses_malformed_specs(world: MemoryWorld, spec: WorkflowSpec, field: str) -> None:
    actor = await world.actor()
    with pytest.raises(BadInput) as caught:
        await world.workflows.register(actor, None, spec)
    assert caught.value.details["field"] == field
    assert world.db.state.workflows == {}


async def test_register_refuses_defaults_that_are_not_an_object(world: MemoryWorld) -> None:
    actor = await world.actor()
    defaults: Any = [1, 2]
    with pytest.raises(BadInput):
        await world.workflows.register(actor, None, WorkflowSpec("train", "pkg:main", defaults=defaults))


async def test_register_refuses_a_duplicate_name_in_the_project(world: MemoryWorld) -> None:
    actor = await world.actor()
    await world.workflows.register(actor, None, WorkflowSpec("train", "pkg:main"))
    with pytest.raises(Conflict):
        await world.workflows.register(actor, None, WorkflowSpec("train", "pkg:other"))
    other = await world.actor("other")
    await world.workflows.register(other, None, WorkflowSpec("train", "pkg:main"))  # another project: fine


async def test_register_needs_member_role(world: MemoryWorld) -> None:
    viewer = await world.actor("demo", Role.VIEWER)
    with pytest.raises(Forbidden):
        await world.workflows.register(viewer, None, WorkflowSpec("train", "pkg:main"))


async def test_builtins_are_seen_by_every_project(world: MemoryWorld) -> None:
    installed = await world.workflows.install_builtins(BUILTINS)
    for name in ["demo", "other"]:
        actor = await world.actor(name, Role.VIEWER)
        page = await world.workflows.list_workflows(actor, None, PageRequest())
        assert [w.name for w in page.items] == ["digits-cnn", "digits-mlp"]
        assert (await world.workflows.get(actor, installed[0].id)).name == "digits-mlp"
        assert (await world.workflows.get_by_name(actor, "digits-cnn")).builtin


async def test_install_builtins_is_idempotent_and_refreshes(world: MemoryWorld) -> None:
    first = await world.workflows.install_builtins(BUILTINS)
    changed = [BUILTINS[0], WorkflowSpec("digits-cnn", "ptw.executors.workflows.digits_cnn:train_v2")]
    second = await world.workflows.install_builtins(changed)
    assert [w.id for w in second] == [w.id for w in first]
    assert [w.created_at for w in second] == [w.created_at for w in first]
    assert len(world.db.state.workflows) == 2
    assert world.db.state.workflows[first[1].id].entrypoint.endswith(":train_v2")


async def test_another_projects_workflow_is_invisible(world: MemoryWorld) -> None:
    owner = await world.actor("demo")
    stranger = await world.actor("other")
    mine = await world.workflow(owner, "secret-sauce")
    with pytest.raises(NotFound):
        await world.workflows.get(stranger, mine.id)
    with pytest.raises(NotFound):
        await world.workflows.get_by_name(stranger, "secret-sauce")
    assert (await world.workflows.list_workflows(stranger, None, PageRequest())).items == []
    assert await world.workflows.get_many(stranger, [mine.id, "missing"]) == [None, None]
    assert await world.workflows.get_many(owner, ["missing", mine.id]) == [None, mine]
    with pytest.raises(NotFound):
        await world.workflows.list_workflows(stranger, owner.project_ids[0], PageRequest())


async def test_a_project_workflow_shadows_a_builtin_of_the_same_name(world: MemoryWorld) -> None:
    await world.workflows.install_builtins(BUILTINS)
    actor = await world.actor()
    own = await world.workflow(actor, "digits-mlp", entrypoint="mine:train")
    assert (await world.workflows.get_by_name(actor, "digits-mlp")).id == own.id


async def test_list_workflows_pages_by_name(world: MemoryWorld) -> None:
    actor = await world.actor()
    for name in ["c", "a", "d", "b", "e"]:
        await world.workflow(actor, name)
    first = await world.workflows.list_workflows(actor, None, PageRequest(first=2))
    second = await world.workflows.list_workflows(actor, None, PageRequest(first=2, after=first.items[-1].id))
    last = await world.workflows.list_workflows(actor, None, PageRequest(first=2, after=second.items[-1].id))
    assert [[w.name for w in p.items] for p in (first, second, last)] == [["a", "b"], ["c", "d"], ["e"]]
    assert (first.has_next, second.has_next, last.has_next) == (True, True, False)
