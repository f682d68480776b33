"""AccessService: authentication by API key, projects, and issuing and revoking keys."""

from __future__ import annotations

import pytest

from ptw.domain.errors import BadInput, Conflict, Forbidden, NotFound, Unauthenticated
from ptw.domain.tenancy import Role
from tests.fixtures.memory import MemoryWorld


@pytest.fixture
def world() -> MemoryWorld:
    return MemoryWorld()


async def test_authenticate_gives_the_roles_of_the_key_and_stamps_its_use(world: MemoryWorld) -> None:
    issued = await world.access.bootstrap_key("demo", Role.MEMBER, name="ci")
    assert world.db.state.api_keys[issued.key.id].last_used_at is None
    actor = await world.access.authenticate(issued.secret)
    assert actor.key_id == issued.key.id
    assert actor.roles == {issued.project.id: Role.MEMBER}
    assert actor.name == "ci"
    assert world.db.state.api_keys[issued.key.id].last_used_at is not None


async def test_the_secret_is_never_stored(world: MemoryWorld) -> None:
    issued = await world.access.bootstrap_key("demo", Role.ADMIN)
    stored = world.db.state.api_keys[issued.key.id]
    assert issued.secret not in (stored.secret_hash, stored.prefix)


@pytest.mark.parametrize("secret", [None, ""])
async def test_authenticate_needs_a_key(world: MemoryWorld, secret: str | None) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await world.access.authenticate(secret)
    assert caught.value.code == "UNAUTHENTICATED"


async def test_authenticate_refuses_malformed_unknown_and_wrong_secrets(world: MemoryWorld) -> None:
    issued = await world.access.bootstrap_key("demo", Role.ADMIN)
    prefix = issued.key.prefix
    for secret in ["not-a-key", "ptw_000000000000_nope", f"ptw_{prefix}_wrong", issued.secret + "x"]:
        with pytest.raises(Unauthenticated):
            await world.access.authenticate(secret)


async def test_authenticate_refuses_a_revoked_key(world: MemoryWorld) -> None:
    issued = await world.access.bootstrap_key("demo", Role.ADMIN)
    actor = await world.access.authenticate(issued.secret)
    await world.access.revoke_api_key(actor, issued.key.id)
    with pytest.raises(Unauthenticated):
        await world.access.authenticate(issued.secret)


async def test_bootstrap_key_creates_the_project_once(world: MemoryWorld) -> None:
    first = await world.access.bootstrap_key("demo", Role.ADMIN)
    second = await world.access.bootstrap_key("demo", Role.VIEWER)
    assert first.project.id == second.project.id
    assert len(world.db.state.projects) == 1
    assert first.key.id != second.key.id and first.secret != second.secret
    assert (await world.access.authenticate(second.secret)).roles == {first.project.id: Role.VIEWER}


async def test_bootstrap_key_reuses_the_project_whatever_the_surrounding_spaces(world: MemoryWorld) -> None:
    first = await world.access.bootstrap_key(" demo ", Role.ADMIN)
    second = await world.access.bootstrap_key(" demo ", Role.ADMIN)
    assert first.project.id == second.project.id


async def test_create_project_makes_the_caller_its_admin(world: MemoryWorld) -> None:
    issued = await world.access.bootstrap_key("demo", Role.ADMIN)
    actor = await world.access.authenticate(issued.secret)
    project = await world.access.create_project(actor, "  research ")
    assert project.name == "research"
    again = await world.access.authenticate(issued.secret)
    assert again.roles == {issued.project.id: Role.ADMIN, project.id: Role.ADMIN}
    listed = await world.access.projects_of(again)
    assert [(p.name, role) for p, role in listed] == [("demo", Role.ADMIN), ("research", Role.ADMIN)]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER])
async def test_create_project_needs_an_admin_key(world: MemoryWorld, role: Role) -> None:
    actor = await world.actor("demo", role)
    with pytest.raises(Forbidden):
        await world.access.create_project(actor, "research")
    assert len(world.db.state.projects) == 1


async def test_create_project_refuses_a_taken_or_malformed_name(world: MemoryWorld) -> None:
    actor = await world.actor("demo", Role.ADMIN)
    with pytest.raises(Conflict):
        await world.access.create_project(actor, "demo")
    for name in ["", "   ", "-dash-first", "x" * 101, "semi;colon"]:
        with pytest.raises(BadInput):
            await world.access.create_project(actor, name)
    assert len(world.db.state.projects) == 1


async def test_create_api_key_by_an_admin_gives_a_working_key(world: MemoryWorld) -> None:
    admin = await world.actor("demo", Role.ADMIN)
    project_id = admin.project_ids[0]
    issued = await world.access.create_api_key(admin, project_id, Role.VIEWER, name="dashboard")
    viewer = await world.access.authenticate(issued.secret)
    assert viewer.roles == {project_id: Role.VIEWER}
    assert viewer.name == "dashboard"


async def test_create_api_key_needs_admin_in_that_project(world: MemoryWorld) -> None:
    member = await world.actor("demo", Role.MEMBER)
    with pytest.raises(Forbidden):
        await world.access.create_api_key(member, member.project_ids[0], Role.VIEWER)
    other = await world.access.bootstrap_key("other", Role.ADMIN)
    admin = await world.actor("demo", Role.ADMIN)
    with pytest.raises(NotFound):
        await world.access.create_api_key(admin, other.project.id, Role.VIEWER)


async def test_get_project_is_hidden_from_strangers(world: MemoryWorld) -> None:
    actor = await world.actor("demo", Role.VIEWER)
    other = await world.access.bootstrap_key("other", Role.ADMIN)
    assert (await world.access.get_project(actor, actor.project_ids[0])).name == "demo"
    with pytest.raises(NotFound):
        await world.access.get_project(actor, other.project.id)


async def test_an_admin_revokes_another_key_once(world: MemoryWorld) -> None:
    admin = await world.actor("demo", Role.ADMIN)
    victim = await world.access.create_api_key(admin, admin.project_ids[0], Role.MEMBER)
    revoked = await world.access.revoke_api_key(admin, victim.key.id)
    assert revoked.revoked_at is not None
    again = await world.access.revoke_api_key(admin, victim.key.id)
    assert again.revoked_at == revoked.revoked_at
    assert world.db.state.api_keys[victim.key.id].revoked_at == revoked.revoked_at


async def test_a_key_may_revoke_itself_but_a_member_not_another(world: MemoryWorld) -> None:
    admin = await world.actor("demo", Role.ADMIN)
    member_key = await world.access.create_api_key(admin, admin.project_ids[0], Role.MEMBER)
    member = await world.access.authenticate(member_key.secret)
    with pytest.raises(Forbidden):
        await world.access.revoke_api_key(member, admin.key_id)
    assert world.db.state.api_keys[admin.key_id].revoked_at is None
    await world.access.revoke_api_key(member, member.key_id)
    assert world.db.state.api_keys[member.key_id].revoked_at is not None


async def test_revoke_hides_keys_of_other_projects(world: MemoryWorld) -> None:
    admin = await world.actor("demo", Role.ADMIN)
    stranger = await world.access.bootstrap_key("other", Role.MEMBER)
    for key_id in [stranger.key.id, "no-such-key"]:
        with pytest.raises(NotFound):
            await world.access.revoke_api_key(admin, key_id)
    assert world.db.state.api_keys[stranger.key.id].revoked_at is None
