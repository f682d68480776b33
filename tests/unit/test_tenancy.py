"""API key secrets and the actor's project rules (who sees what, with which role)."""

from __future__ import annotations

import re

import pytest

from ptw.domain import keys
from ptw.domain.errors import BadInput, Forbidden, NotFound
from ptw.domain.tenancy import Actor, Role


def test_new_secret_has_the_documented_shape() -> None:
    prefix, secret, secret_hash = keys.new_secret()
    assert re.fullmatch(r"[0-9a-f]{12}", prefix)
    assert re.fullmatch(rf"ptw_{prefix}_[A-Za-z0-9_-]{{40,}}", secret)
    assert secret_hash != secret and prefix not in secret_hash
    assert keys.prefix_of(secret) == prefix


def test_new_secrets_differ() -> None:
    assert len({keys.new_secret()[1] for _ in range(20)}) == 20


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "ptw",
        "ptw_abc_def",
        "xyz_0123456789ab_rest",
        "ptw_0123456789ab",
        "ptw_0123456789abc_rest",
        "garbage",
    ],
)
def test_prefix_of_refuses_malformed_secrets(secret: str) -> None:
    assert keys.prefix_of(secret) is None


def test_prefix_of_allows_underscores_in_the_secret_part() -> None:
    assert keys.prefix_of("ptw_0123456789ab_a_b_c") == "0123456789ab"


def test_matches_only_the_right_secret() -> None:
    _, secret, secret_hash = keys.new_secret()
    _, other, _ = keys.new_secret()
    assert keys.matches(secret, secret_hash)
    assert not keys.matches(other, secret_hash)
    assert not keys.matches(secret[:-1], secret_hash)
    assert not keys.matches(secret, secret)


ACTOR = Actor(key_id="k1", roles={"p-view": Role.VIEWER, "p-member": Role.MEMBER, "p-admin": Role.ADMIN})


def test_require_hides_a_project_the_actor_cannot_see() -> None:
    with pytest.raises(NotFound) as caught:
        ACTOR.require("p-other", Role.VIEWER, "Run", "r9")
    assert caught.value.code == "NOT_FOUND"
    assert "Run r9" in caught.value.message


def test_require_names_the_project_when_no_ident_is_given() -> None:
    with pytest.raises(NotFound, match="Project p-other"):
        ACTOR.require("p-other", Role.VIEWER)


@pytest.mark.parametrize(
    ("project", "needed", "allowed"),
    [
        ("p-view", Role.VIEWER, True),
        ("p-view", Role.MEMBER, False),
        ("p-member", Role.MEMBER, True),
        ("p-member", Role.ADMIN, False),
        ("p-admin", Role.ADMIN, True),
        ("p-admin", Role.VIEWER, True),
    ],
)
def test_require_compares_roles(project: str, needed: Role, allowed: bool) -> None:
    if allowed:
        ACTOR.require(project, needed)
    else:
        with pytest.raises(Forbidden) as caught:
            ACTOR.require(project, needed)
        assert caught.value.code == "FORBIDDEN"


def test_can_see_own_projects_and_builtins_only() -> None:
    assert ACTOR.can_see("p-view") and ACTOR.can_see(None)
    assert not ACTOR.can_see("p-other")
    assert ACTOR.project_ids == ["p-admin", "p-member", "p-view"]


def test_default_project_takes_the_given_one_or_the_only_one() -> None:
    assert ACTOR.default_project("p-view") == "p-view"
    assert Actor("k2", {"solo": Role.VIEWER}).default_project(None) == "solo"


def test_default_project_is_required_with_several_projects() -> None:
    with pytest.raises(BadInput) as caught:
        ACTOR.default_project(None)
    assert caught.value.details == {"field": "projectId"}


def test_default_project_is_required_without_any_project() -> None:
    with pytest.raises(BadInput):
        Actor("k3").default_project(None)
