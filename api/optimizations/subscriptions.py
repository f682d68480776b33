"""Subscriptions of optimizations: ``optimizationProgress``, from a snapshot to the optimization's end."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_id
from ptw.api.optimizations.types import (
    Optimization,
    OptimizationEvent,
    OptimizationProgress,
    OptimizationResult,
    event_of,
)
from ptw.domain.events import OptimizationProgressed, Progress, optimization_topic


@strawberry.type
class OptimizationSubscriptions:
    @strawberry.subscription(
        description="A SNAPSHOT of the optimization (with its best result so far), then its progress: trials "
        "started, reported, completed, pruned, failed, a new best; ends after FINISHED."
    )
    async def optimization_progress(
        self, info: Info, optimization_id: strawberry.ID
    ) -> AsyncGenerator[OptimizationEvent, None]:
        services, actor = info.context.services, info.context.actor
        ident = decode_id(optimization_id, "Optimization")
        await services.optimizations.get(actor, ident)  # NOT_FOUND before subscribing to anything
        with info.context.telemetry.subscription("optimizationProgress"):
            async with services.bus.subscribe([optimization_topic(ident)]) as live:
                # Subscribed first, then read: nothing that happens in between is missed.
                optimization = await services.optimizations.get(actor, ident)
                best = await services.optimizations.best(actor, ident)
                yield OptimizationEvent(
                    progress=OptimizationProgress.SNAPSHOT,
                    optimization=Optimization.from_domain(optimization),
                    result=OptimizationResult.from_domain(best) if best is not None else None,
                )
                if optimization.finished:
                    return
                async for event in live:
                    if isinstance(event, OptimizationProgressed):
                        yield event_of(event)
                        if event.progress is Progress.FINISHED:
                            return
