"""Mutations of optimizations: start a search or a tuning, cancel one."""

from __future__ import annotations

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_id, decode_optional_id
from ptw.api.optimizations.types import Optimization, StartOptimizationInput
from ptw.domain.services.optimizations import OptimizationSpec


@strawberry.type
class OptimizationMutations:
    @strawberry.mutation(
        description="A hyperparameter search or a performance tuning of a workflow. It is QUEUED, then "
        "RUNNING as soon as the server's driver picks it up; follow it with optimizationProgress."
    )
    async def start_optimization(self, info: Info, input: StartOptimizationInput) -> Optimization:
        spec = OptimizationSpec(
            workflow_id=decode_id(input.workflow_id, "Workflow"),
            kind=input.kind,
            objective=input.objective,
            direction=input.direction,
            space=input.space,  # type: ignore[arg-type]  # checked by the domain (BAD_USER_INPUT)
            sampler=input.sampler,
            pruner=input.pruner,
            max_trials=input.max_trials,
            max_parallel=input.max_parallel,
            time_budget_seconds=input.time_budget_seconds,
            params=input.params,  # type: ignore[arg-type]
        )
        optimization = await info.context.services.optimizations.start(
            info.context.actor, decode_optional_id(input.project_id, "Project"), spec
        )
        return Optimization.from_domain(optimization)

    @strawberry.mutation(description="Stop an optimization; its running trials are cancelled.")
    async def cancel_optimization(self, info: Info, id: strawberry.ID) -> Optimization:
        optimization = await info.context.services.optimizations.cancel(
            info.context.actor, decode_id(id, "Optimization")
        )
        return Optimization.from_domain(optimization)
