"""The Node interface and the mapping of a domain entity onto its GraphQL type, field by field name."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, TypeVar

import strawberry

from ptw.api.ids import encode_id

T = TypeVar("T")
N = TypeVar("N", bound="Node")


@functools.cache
def _init_fields(cls: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


def from_entity(cls: type[T], entity: Any, **fields: Any) -> T:
    """``cls`` (a strawberry type) with each field the domain ``entity`` has by the same name, ``model``
    (the entity itself, where the type keeps it for its resolvers), and ``fields`` for the rest: a field
    of the type that the entity lacks and ``fields`` does not give fails at once."""
    for name in _init_fields(cls):
        if name in fields:
            continue
        if name == "model":
            fields[name] = entity
        elif hasattr(entity, name):
            fields[name] = getattr(entity, name)
    return cls(**fields)


@strawberry.interface(description="An object with a global ID, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID

    @classmethod
    def of(cls: type[N], entity: Any, **fields: Any) -> N:
        """The GraphQL object of a domain entity, its ``id`` the global ID of ``TypeName:entity.id``."""
        return from_entity(cls, entity, id=strawberry.ID(encode_id(cls.__name__, entity.id)), **fields)
