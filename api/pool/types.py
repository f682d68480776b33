"""GraphQL types of the executor pool: workers, queue depth and the autoscaler's decision."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

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
        return cls(
            id=state.id,
            resource_classes=list(state.resource_classes),
            busy=state.busy,
            devices=list(state.devices),
            seen_at=state.seen_at,
        )


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
        return cls(
            workers=state.workers,
            busy=state.busy,
            queue_depth=state.queue_depth,
            desired_workers=state.desired_workers,
            queue_by_class=dict(state.queue_by_class),
            executors=[Executor.from_domain(e) for e in state.executors],
        )
