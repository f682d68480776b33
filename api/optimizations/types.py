"""GraphQL types of optimizations: hyperparameter searches, performance tuning and their results."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from ptw.api.context import Info
from ptw.api.direction import Direction
from ptw.api.node import Node
from ptw.api.pagination import Connection, connection, page_request
from ptw.api.workflows.types import Workflow
from ptw.domain import optimizations
from ptw.domain.events import OptimizationProgressed, Progress

if TYPE_CHECKING:
    from ptw.api.runs.types import Run


OptimizationKind = strawberry.enum(optimizations.OptimizationKind)
OptimizationStatus = strawberry.enum(optimizations.OptimizationStatus)

ResultState = strawberry.enum(optimizations.ResultState)


@strawberry.type(description="A trial of a search, or a measured configuration of a tuning.")
class OptimizationResult(Node):
    config: dict[str, Any] = strawberry.field(graphql_type=JSON)
    value: float | None
    state: ResultState
    metrics: dict[str, Any] | None = strawberry.field(graphql_type=JSON | None)
    created_at: datetime
    number: int | None = strawberry.field(description="The trial's number in its search, from 0.")
    last_step: int | None = strawberry.field(description="The step of the trial's latest report.")
    model: strawberry.Private[optimizations.OptimizationResult]

    @classmethod
    def from_domain(cls, result: optimizations.OptimizationResult) -> OptimizationResult:
        return cls.of(result, last_step=max(result.intermediate) if result.intermediate else None)

    @strawberry.field(description="The run that produced this result, if any.")
    async def run(self, info: Info) -> Annotated[Run, strawberry.lazy("ptw.api.runs.types")] | None:
        from ptw.api.runs.types import Run

        if self.model.run_id is None:
            return None
        run = await info.context.loaders.run.load(self.model.run_id)
        return Run.from_domain(run) if run is not None else None


@strawberry.type
class Optimization(Node):
    kind: OptimizationKind
    status: OptimizationStatus
    objective: str | None
    direction: Direction
    space: dict[str, Any] = strawberry.field(graphql_type=JSON)
    sampler: str | None
    pruner: str | None
    max_trials: int | None
    max_parallel: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    started_at: datetime | None
    time_budget_seconds: int | None
    params: dict[str, Any] = strawberry.field(
        graphql_type=JSON, description="Params every trial gets, over the workflow's defaults."
    )
    model: strawberry.Private[optimizations.Optimization]

    @classmethod
    def from_domain(cls, optimization: optimizations.Optimization) -> Optimization:
        return cls.of(optimization)

    @strawberry.field
    async def workflow(self, info: Info) -> Workflow:
        return await Workflow.load(info, self.model.workflow_id)

    @strawberry.field(description="Best first for the objective's direction; unfinished and failed last.")
    async def results(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[OptimizationResult]:
        page = await info.context.services.optimizations.results(
            info.context.actor, self.model.id, page_request(first, after)
        )
        return connection(page, OptimizationResult.from_domain, lambda result: result.id)

    @strawberry.field(
        description="The best complete result for the objective's direction (for a tuning: the fastest "
        "variant within the accuracy tolerance)."
    )
    async def best(self, info: Info) -> OptimizationResult | None:
        best = await info.context.services.optimizations.best(info.context.actor, self.model.id)
        return OptimizationResult.from_domain(best) if best is not None else None

    @strawberry.field(
        graphql_type=JSON | None,
        description="How much each parameter of the space explains the objective over the complete trials "
        "(Optuna's fANOVA importance evaluator): {name: share}, highest first, summing to 1; {} until a few "
        "trials are complete; null for a tuning.",
    )
    async def importance(self, info: Info) -> dict[str, float] | None:
        return await info.context.services.optimizations.parameter_importance(
            info.context.actor, self.model.id
        )


# The domain's steps, and SNAPSHOT: the state a subscription starts with, which is no step of the domain.
OptimizationProgress = strawberry.enum(
    enum.Enum(  # type: ignore[misc]
        "OptimizationProgress", {p.name: p.value for p in Progress} | {"SNAPSHOT": "SNAPSHOT"}
    ),
    description="What happened to an optimization.",
)


@strawberry.type(
    description="A change of an optimization: SNAPSHOT (its state when subscribing), then what happened; "
    "``result`` is the trial concerned (for NEW_BEST, the new best; for FINISHED, the best), ``step`` and "
    "``value`` a trial's report."
)
class OptimizationEvent:
    progress: OptimizationProgress
    optimization: Optimization
    result: OptimizationResult | None
    step: int | None = None
    value: float | None = None


@strawberry.input
class OptimizationFilter:
    project_id: strawberry.ID | None = None


@strawberry.input
class StartOptimizationInput:
    workflow_id: strawberry.ID
    project_id: strawberry.ID | None = None
    kind: OptimizationKind
    objective: str | None = None
    direction: Direction | None = None
    space: JSON | None = None
    sampler: str | None = None
    pruner: str | None = None
    max_trials: int | None = None
    max_parallel: int | None = None
    time_budget_seconds: int | None = strawberry.field(
        default=None, description="Start no trial after this many seconds; running ones finish."
    )
    params: JSON | None = strawberry.field(
        default=None, description="Params every trial gets, over the workflow's defaults."
    )


def event_of(event: OptimizationProgressed) -> OptimizationEvent:
    return OptimizationEvent(
        progress=OptimizationProgress(event.progress.value),
        optimization=Optimization.from_domain(event.optimization),
        result=OptimizationResult.from_domain(event.result) if event.result is not None else None,
        step=event.step,
        value=event.value,
    )
