"""Plain leaf fields read past graphql-core's per-field machinery answer exactly as graphql-core does."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.scalars import JSON

from ptw.api import leaf_fields
from ptw.api.schema import PtwExecutionContext


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"


@strawberry.type
class Point:
    key: str
    step: int
    value: float
    at: datetime
    colour: Colour
    extra: JSON
    maybe: str | None

    @strawberry.field
    def doubled(self, times: int = 2) -> int:
        return self.step * times


def _point(**changes: Any) -> Point:
    values: dict[str, Any] = {
        "key": "loss",
        "step": 3,
        "value": 0.5,
        "at": datetime(2026, 12, 7, tzinfo=UTC),
        "colour": Colour.RED,
        "extra": {"a": [1]},
        "maybe": None,
    }
    return Point(**{**values, **changes})


POINTS: list[Point] = []


@strawberry.type
class Query:
    @strawberry.field
    def points(self) -> list[Point]:
        return POINTS


QUERY = "{ points { key step value at colour extra maybe doubled(times: 3) } }"


def _both(points: list[Point]) -> tuple[Any, Any, int]:
    POINTS[:] = points
    plain = strawberry.Schema(query=Query).execute_sync(QUERY)
    read: list[str] = []
    original = leaf_fields.plain_leaf

    def counted(field: Any) -> Any:
        leaf = original(field)
        if leaf is not None:
            read.append(leaf.name)
        return leaf

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(leaf_fields, "plain_leaf", counted)
        fast = strawberry.Schema(query=Query, execution_context_class=PtwExecutionContext).execute_sync(QUERY)
    return plain, fast, len(read)


def _errors(result: Any) -> list[tuple[str, Any]]:
    return [(e.message, e.path) for e in result.errors or ()]


def test_plain_leaves_answer_as_graphql_core_does() -> None:
    plain, fast, read = _both([_point(), _point(key="acc", step=4, value=1)])
    assert fast.data == plain.data and not fast.errors and not plain.errors
    assert fast.data["points"][1] == {
        "key": "acc",
        "step": 4,
        "value": 1.0,
        "at": "2026-12-07T00:00:00+00:00",
        "colour": "RED",
        "extra": {"a": [1]},
        "maybe": None,
        "doubled": 12,
    }
    assert read == 2 * 7  # every leaf but the one with arguments and a resolver of its own


@pytest.mark.parametrize(
    "bad", [{"key": None}, {"step": 2**40}, {"value": float("nan")}, {"colour": "blue"}, {"at": "x"}]
)
def test_values_that_fail_take_graphql_cores_path_and_its_errors(bad: dict[str, Any]) -> None:
    plain, fast, _ = _both([_point(), _point(**bad)])
    assert fast.data == plain.data
    assert _errors(fast) == _errors(plain) and len(_errors(fast)) == 1


class Deny(strawberry.BasePermission):
    message = "denied"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


class _Raising:
    b = 1

    @property
    def a(self) -> str:
        raise RuntimeError("broken attribute")


@strawberry.type
class Guarded:
    a: str | None
    b: int
    secret: str | None = strawberry.field(permission_classes=[Deny], default="s")


@strawberry.type
class GuardedQuery:
    @strawberry.field
    def guarded(self) -> Guarded | None:
        return _Raising()  # type: ignore[return-value]


def test_an_attribute_that_raises_or_a_guarded_field_errs_on_that_field_alone() -> None:
    query = "{ guarded { a b secret } }"
    plain = strawberry.Schema(query=GuardedQuery).execute_sync(query)
    schema = strawberry.Schema(query=GuardedQuery, execution_context_class=PtwExecutionContext)
    fast = schema.execute_sync(query)
    assert fast.data == plain.data == {"guarded": {"a": None, "b": 1, "secret": None}}
    assert _errors(fast) == _errors(plain)
    assert sorted(message for message, _ in _errors(fast)) == ["broken attribute", "denied"]
