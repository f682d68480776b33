"""Rows to the domain's dataclasses and back, derived from the dataclass's own fields.

pydantic's ``TypeAdapter`` builds an entity from a row (enum values become the domain's enums, JSON object
keys the dataclass's key types); the row values are the fields of the entity, enums by value. A nested
dataclass (``Workflow.resources``) is spread over columns of its own field names. A table whose columns are
not the entity's fields fails on import, so a new field cannot be forgotten here: it needs only its column.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter
from sqlalchemy import Row, Table

T = TypeVar("T")


class EntityMapping(Generic[T]):
    def __init__(
        self, entity: type[T], table: Table, *, spread: Iterable[str] = (), table_only: Iterable[str] = ()
    ) -> None:
        """``spread``: nested dataclass fields stored as columns of their own; ``table_only``: columns
        that are no field of the entity (written by the repository's own statements, never read back)."""
        hints = typing.get_type_hints(entity)
        self.entity = entity
        self.table = table
        self._adapter = TypeAdapter(entity)
        self._spread = {name: [f.name for f in dataclasses.fields(hints[name])] for name in spread}
        self._table_only = tuple(table_only)
        names = {f.name for f in dataclasses.fields(entity)} - self._spread.keys()
        names |= {inner for inners in self._spread.values() for inner in inners}
        names |= set(self._table_only)
        if names != set(table.c.keys()):
            raise TypeError(
                f"table {table.name} does not hold the fields of {entity.__name__}: "
                f"missing columns {sorted(names - set(table.c.keys()))}, "
                f"unknown columns {sorted(set(table.c.keys()) - names)}"
            )

    def entity_of(self, row: Row[Any]) -> T:
        values = dict(row._mapping)
        for name in self._table_only:
            values.pop(name, None)
        for name, inners in self._spread.items():
            values[name] = {inner: values.pop(inner) for inner in inners}
        return self._adapter.validate_python(values)

    def values(self, entity: T) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(entity):  # type: ignore[arg-type]
            value = getattr(entity, f.name)
            if f.name in self._spread:
                values.update({inner: getattr(value, inner) for inner in self._spread[f.name]})
            else:
                values[f.name] = value.value if isinstance(value, enum.Enum) else value
        return values
