"""GraphQL types of the executor pool: workers, queue depth and the autoscaler's decision."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from ptw.api.node import from_entity
from ptw.domain.executors import ExecutorState, PoolState


@strawberry.type
class Executor:
    id: str
    resource_classes: list[str]
    busy: bool
    devices: list[str]
    seen_at: datetime

    @classmethod
    def from_domain(cls, state: ExecutorState) -> Executor:
        return from_entity(cls, state)


@strawberry.type
class ExecutorPool:
    workers: int
    busy: int
    queue_depth: int
    desired_workers: int = strawberry.field(description="How many workers the autoscaler wants now.")
    queue_by_class: dict[str, int] = strawberry.field(
        graphql_type=JSON, description="Jobs waiting per resource class (cpu, gpu)."
    )
    executors: list[Executor]

    @classmethod
    def from_domain(cls, state: PoolState) -> ExecutorPool:
        return from_entity(cls, state, executors=[Executor.from_domain(e) for e in state.executors])
