"""Subscriptions of optimizations: ``optimizationProgress`` (not available until optimizations can start)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from api.context import Info
from api.ids import decode_id
from api.optimizations.types import OptimizationEvent
from domain.errors import BadInput


@strawberry.type
class OptimizationSubscriptions:
    @strawberry.subscription(description="Status changes and results of an optimization as they happen.")
    async def optimization_progress(
        self, info: Info, optimization_id: strawberry.ID
    ) -> AsyncGenerator[OptimizationEvent, None]:
        await info.context.services.optimizations.get(
            info.context.actor, decode_id(optimization_id, "Optimization")
        )
        raise BadInput("optimization progress is not available yet in this version", reason="NOT_IMPLEMENTED")
        # Unreachable, but a subscription resolver must be an async generator.
        yield
