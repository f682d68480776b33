"""JSON of the cached domain objects (workflows, runs, projects), derived from their dataclasses.

pydantic reads and writes each dataclass field by field: a new field is cached with no change here, and a
value cached before the field existed reads with the field's default."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import TypeAdapter

from ptw.domain.runs import Run
from ptw.domain.tenancy import Project
from ptw.domain.workflows import Workflow

T = TypeVar("T")


class Codec(Generic[T]):
    def __init__(self, entity: type[T]) -> None:
        self._adapter = TypeAdapter(entity)

    def encode(self, value: T) -> str:
        return self._adapter.dump_json(value).decode()

    def decode(self, text: str | bytes) -> T:
        return self._adapter.validate_json(text)


workflows = Codec(Workflow)
runs = Codec(Run)
projects = Codec(Project)
