"""Mutations of optimizations (answered with BAD_USER_INPUT until the optimization work lands)."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.ids import decode_id, decode_optional_id
from api.optimizations.types import Optimization, StartOptimizationInput


@strawberry.type
class OptimizationMutations:
    @strawberry.mutation(description="A hyperparameter search or a performance tuning of a workflow.")
    async def start_optimization(self, info: Info, input: StartOptimizationInput) -> Optimization:
        decode_id(input.workflow_id, "Workflow")
        optimization = await info.context.services.optimizations.start(
            info.context.actor, decode_optional_id(input.project_id, "Project")
        )
        return Optimization.from_domain(optimization)

    @strawberry.mutation
    async def cancel_optimization(self, info: Info, id: strawberry.ID) -> Optimization:
        optimization = await info.context.services.optimizations.cancel(
            info.context.actor, decode_id(id, "Optimization")
        )
        return Optimization.from_domain(optimization)
