"""A run's name, tags and notes (rules, updateRun) and short ids (RunService.resolve_id)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ptw.domain.errors import BadInput, Forbidden, NotFound
from ptw.domain.events import RunChanged, run_topic
from ptw.domain.run_labels import checked_tags, default_name, is_short_id, short_id
from ptw.domain.runs import Run
from ptw.domain.tenancy import Actor, Role
from ptw.domain.workflows import Workflow
from tests.fixtures.memory import MemoryWorld

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def world() -> MemoryWorld:
    return MemoryWorld()


@pytest.fixture
async def member(world: MemoryWorld) -> Actor:
    return await world.actor("demo", Role.MEMBER)


@pytest.fixture
async def workflow(world: MemoryWorld, member: Actor) -> Workflow:
    return await world.workflow(member)


def test_default_names_are_readable_stable_and_end_with_the_id() -> None:
    run_id = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    name = default_name(run_id)
    assert name == default_name(run_id) and name.endswith("-3fa8") and name.count("-") == 2
    assert short_id(run_id) == "3fa85f64"


def test_short_ids_are_hex_prefixes_never_global_ids() -> None:
    assert is_short_id("3fa85f64") and is_short_id("3fa85f64-5717")
    assert not is_short_id("UnVuOjNmYTg1ZjY0") and not is_short_id("") and not is_short_id("xyz1")


def test_tags_are_trimmed_deduplicated_and_checked() -> None:
    assert checked_tags([" a ", "b", "a"]) == ["a", "b"]
    for bad in (["a,b"], [""], ["x" * 65], ["o\nk"], "abc", ["t"] * 33):
        with pytest.raises(BadInput):
            checked_tags(bad)


async def test_start_with_name_and_tags_then_update_each_field(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    run = await world.runs.start_run(member, workflow.id, name=" resnet ", tags=["baseline"])
    assert (run.name, run.tags, run.notes) == ("resnet", ["baseline"], None)
    unnamed = await world.runs.start_run(member, workflow.id)
    assert unnamed.name == default_name(unnamed.id)
    updated = await world.runs.update_run(member, run.id, notes="lr too high")
    assert (updated.name, updated.tags, updated.notes) == ("resnet", ["baseline"], "lr too high")
    assert world.bus.events(RunChanged, run_topic(run.id))[-1].run == updated
    updated = await world.runs.update_run(member, run.id, name="resnet-2", tags=[], notes="")
    assert (updated.name, updated.tags, updated.notes) == ("resnet-2", [], None)
    assert world.stored_run(run.id) == updated
    with pytest.raises(BadInput):
        await world.runs.update_run(member, run.id, name="   ")


async def test_a_viewer_cannot_update_and_an_outsider_sees_nothing(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    run = await world.runs.start_run(member, workflow.id)
    viewer = await world.actor("demo", Role.VIEWER)
    with pytest.raises(Forbidden):
        await world.runs.update_run(viewer, run.id, name="mine")
    outsider = await world.actor("elsewhere", Role.ADMIN)
    with pytest.raises(NotFound):
        await world.runs.update_run(outsider, run.id, name="mine")
    with pytest.raises(NotFound):
        await world.runs.resolve_id(outsider, short_id(run.id))


async def test_resolve_id_answers_the_one_run_a_prefix_names(
    world: MemoryWorld, member: Actor, workflow: Workflow
) -> None:
    run_ids = ["abcd1234-0000-4000-8000-000000000000", "abcd5678-0000-4000-8000-000000000000"]
    async with world.db() as uow:
        for run_id in run_ids:
            await uow.runs.add(Run(run_id, member.project_ids[0], workflow.id, {}, T0))
        await uow.commit()
    assert await world.runs.resolve_id(member, "abcd1234") == run_ids[0]
    assert await world.runs.resolve_id(member, run_ids[1]) == run_ids[1]
    with pytest.raises(BadInput, match="ambiguous"):
        await world.runs.resolve_id(member, "abcd")
    with pytest.raises(BadInput, match="at least"):
        await world.runs.resolve_id(member, "ab")
    with pytest.raises(NotFound):
        await world.runs.resolve_id(member, "ffff0000")
