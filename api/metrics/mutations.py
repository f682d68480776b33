"""Mutations of metrics: ``logMetrics`` for training code that runs outside our executors."""

from __future__ import annotations

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_id
from ptw.api.metrics.types import MetricInput


@strawberry.type
class MetricMutations:
    @strawberry.mutation(description="Store points of a run as one batch; answers how many were stored.")
    async def log_metrics(self, info: Info, run_id: strawberry.ID, points: list[MetricInput]) -> int:
        return await info.context.services.metrics.log_metrics(
            info.context.actor, decode_id(run_id, "Run"), [p.to_domain() for p in points]
        )
