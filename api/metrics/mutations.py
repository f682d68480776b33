"""Mutations of metrics: ``logMetrics`` for training code that runs outside our executors."""

from __future__ import annotations

import strawberry

from ptw.api.context import Info
from ptw.api.metrics.types import MetricInput
from ptw.api.run_ids import run_id_of


@strawberry.type
class MetricMutations:
    @strawberry.mutation(description="Store points of a run as one batch; answers how many were stored.")
    async def log_metrics(self, info: Info, run_id: strawberry.ID, points: list[MetricInput]) -> int:
        return await info.context.services.metrics.log_metrics(
            info.context.actor, await run_id_of(info, run_id), [p.to_domain() for p in points]
        )
