"""Optimizations: starting, cancelling and reading them, and the pruning decision a trial's report asks for.

Starting only records the optimization (QUEUED): the OptimizationDriver runs it. Every decision reads the
search from the database, so any process (an API replica, an executor) can take it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ptw.domain.clock import new_id, utcnow
from ptw.domain.errors import BadInput, NotFound
from ptw.domain.events import OptimizationProgressed, Progress, optimization_topic
from ptw.domain.optimizations import (
    Direction,
    Optimization,
    OptimizationKind,
    OptimizationResult,
    OptimizationStatus,
    ResultState,
)
from ptw.domain.ports import (
    EventBus,
    Page,
    PageRequest,
    ParameterImportance,
    ParamsValidator,
    SearchStrategy,
    UnitOfWork,
    UnitOfWorkFactory,
)
from ptw.domain.quotas import Quotas
from ptw.domain.runs import RunQuery, RunStatus
from ptw.domain.search_space import check_choice, extremes, grid_size, parse_space
from ptw.domain.services.runs import publish_run
from ptw.domain.tenancy import Actor, Role
from ptw.domain.trials import (
    FROM_LOGS,
    FROM_REPORTS,
    LOGGED_KEYS,
    MAX_LOGGED_KEYS,
    OBJECTIVE_FROM,
    TUNING_OBJECTIVES,
    best_of,
    ranked,
    thinned,
)
from ptw.domain.workflows import Workflow

TUNER_WORKFLOW = "ptw-tuner"  # the built-in workflow that measures a performance tuning's variants
MAX_TRIALS = 1000
MAX_PARALLEL = 64
DEFAULT_TRIALS = 20
_NOT_TRIALS_KEPT = 10_000
# What a tuning's ``space`` may set of the tuner's params (checked against its schema at start).
TUNING_KNOBS = ("variants", "tolerance", "steps", "warmup", "batch_sizes", "threads")


@dataclass(frozen=True)
class OptimizationSpec:
    """What ``startOptimization`` is given. For PERFORMANCE_TUNING, ``space`` may hold ``variants`` (names
    to measure), ``tolerance`` (the largest output difference from the baseline a best may have) and the
    tuner's ``steps``, ``warmup``, ``batch_sizes`` and ``threads``."""

    workflow_id: str
    kind: OptimizationKind
    objective: str | None = None
    direction: Direction | None = None
    space: dict[str, Any] | None = None
    sampler: str | None = None
    pruner: str | None = None
    max_trials: int | None = None
    max_parallel: int | None = None
    time_budget_seconds: int | None = None
    params: dict[str, Any] | None = None


def tuning_params(optimization: Optimization, workflow: Workflow, tuner: Workflow) -> dict[str, Any]:
    """The params of a tuning's one run of the tuner: the workflow to measure, with its params."""
    params: dict[str, Any] = {
        **tuner.defaults,
        "target": workflow.name,
        "target_params": {**workflow.defaults, **optimization.params},
    }
    space = optimization.space
    params.update({k: space[k] for k in TUNING_KNOBS if space.get(k) is not None})
    return params


async def publish_progress(
    bus: EventBus, optimization: Optimization, progress: Progress, result: OptimizationResult | None = None
) -> None:
    event = OptimizationProgressed(optimization, progress, result)
    await bus.publish([optimization_topic(optimization.id)], event)


@dataclass
class OptimizationService:
    uow: UnitOfWorkFactory
    bus: EventBus
    strategy: SearchStrategy
    validator: ParamsValidator
    on_start: Callable[[], None] | None = None  # wakes the driver, so a new search starts at once
    importance: ParameterImportance | None = None
    quotas: Quotas = field(default_factory=Quotas)
    _not_trials: set[str] = field(default_factory=set)

    async def get(self, actor: Actor, optimization_id: str) -> Optimization:
        async with self.uow() as uow:
            optimization = await uow.optimizations.get(optimization_id)
        if optimization is None or not actor.can_see(optimization.project_id):
            raise NotFound.of("Optimization", optimization_id)
        return optimization

    async def list_optimizations(
        self, actor: Actor, project_id: str | None, page: PageRequest
    ) -> Page[Optimization]:
        if project_id is not None:
            actor.require(project_id, Role.VIEWER)
        projects = [project_id] if project_id else actor.project_ids
        async with self.uow() as uow:
            return await uow.optimizations.find(projects, page)

    async def results(
        self, actor: Actor, optimization_id: str, page: PageRequest
    ) -> Page[OptimizationResult]:
        """Best first for the objective's direction; ``page.after`` is the id of the last result seen.
        A search has at most MAX_TRIALS results, so they are ranked in memory."""
        optimization = await self.get(actor, optimization_id)
        async with self.uow() as uow:
            everything = ranked(await uow.optimizations.all_results(optimization_id), optimization.direction)
        start = 0
        if page.after is not None:
            ids = [r.id for r in everything]
            start = ids.index(page.after) + 1 if page.after in ids else len(ids)
        first = max(1, page.first)
        return Page(everything[start : start + first], has_next=len(everything) > start + first)

    async def get_result(self, actor: Actor, result_id: str) -> OptimizationResult:
        async with self.uow() as uow:
            result = await uow.optimizations.get_result(result_id)
            optimization = await uow.optimizations.get(result.optimization_id) if result else None
        if result is None or optimization is None or not actor.can_see(optimization.project_id):
            raise NotFound.of("OptimizationResult", result_id)
        return result

    async def result_of_run(self, actor: Actor, run_id: str) -> OptimizationResult | None:
        """The result a run is the trial of; None for a run that is no trial (or one the actor cannot see)."""
        async with self.uow() as uow:
            run = await uow.runs.get(run_id)
            if run is None or run.optimization_id is None or not actor.can_see(run.project_id):
                return None
            return await uow.optimizations.result_for_run(run_id)

    async def best(self, actor: Actor, optimization_id: str) -> OptimizationResult | None:
        optimization = await self.get(actor, optimization_id)
        async with self.uow() as uow:
            return best_of(optimization, await uow.optimizations.all_results(optimization_id))

    async def parameter_importance(self, actor: Actor, optimization_id: str) -> dict[str, float] | None:
        """How much each parameter explains the objective so far; None for a tuning (it has no space)."""
        optimization = await self.get(actor, optimization_id)
        if optimization.kind is not OptimizationKind.HYPERPARAMETER_SEARCH or self.importance is None:
            return None
        async with self.uow() as uow:
            trials = await uow.optimizations.all_results(optimization_id)
        # The evaluator fits a random forest: off the event loop, so other requests go on meanwhile.
        return await asyncio.to_thread(self.importance.importance, optimization, trials)

    async def start(self, actor: Actor, project_id: str | None, spec: OptimizationSpec) -> Optimization:
        project_id = actor.default_project(project_id)
        actor.require(project_id, Role.MEMBER)
        async with self.uow() as uow:
            workflow = await uow.workflows.get(spec.workflow_id)
            if workflow is None or workflow.project_id not in (None, project_id):
                raise NotFound.of("Workflow", spec.workflow_id)
            unfinished = [OptimizationStatus.QUEUED, OptimizationStatus.RUNNING]
            self.quotas.check(
                "unfinished optimizations",
                await uow.optimizations.count_with_status(project_id, unfinished),
                self.quotas.optimizations(await uow.projects.get_quota(project_id)),
            )
            tuner = await uow.workflows.get_by_name(TUNER_WORKFLOW, None)
            if spec.kind is OptimizationKind.PERFORMANCE_TUNING and tuner is None:
                raise BadInput("performance tuning is not available on this server", field="kind")
            params = spec.params or {}
            if not isinstance(params, dict):
                raise BadInput("params must be a JSON object", field="params")
            base = {**workflow.defaults, **params}
            self._check_params(workflow.params_schema, base, "params")
            optimization = Optimization(
                id=new_id(),
                project_id=project_id,
                workflow_id=workflow.id,
                kind=spec.kind,
                created_at=utcnow(),
                params=params,
                time_budget_seconds=_positive(spec.time_budget_seconds, "timeBudgetSeconds", None),
            )
            if spec.kind is OptimizationKind.HYPERPARAMETER_SEARCH:
                self._search(optimization, spec, workflow.params_schema, base)
            else:
                assert tuner is not None
                self._tuning(optimization, spec)
                self._check_params(tuner.params_schema, tuning_params(optimization, workflow, tuner), "space")
            await uow.optimizations.add(optimization)
            await uow.commit()
        if self.on_start is not None:
            self.on_start()
        return optimization

    async def cancel(self, actor: Actor, optimization_id: str) -> Optimization:
        """Stop the optimization: its running trials are cancelled and end FAILED."""
        await self.get(actor, optimization_id)
        changed_runs = []
        async with self.uow() as uow:
            optimization = await uow.optimizations.get(optimization_id, for_update=True)
            assert optimization is not None
            actor.require(optimization.project_id, Role.MEMBER, "Optimization", optimization_id)
            if optimization.finished:
                return optimization
            now = utcnow()
            optimization.status = OptimizationStatus.CANCELLED
            optimization.finished_at = now
            for result in await uow.optimizations.all_results(optimization_id):
                if result.state is ResultState.RUNNING:
                    result.state = ResultState.FAILED
                    result.metrics = {**result.metrics, "error": "the optimization was cancelled"}
                    await uow.optimizations.update_result(result)
            for run_id in await self._active_runs(uow, optimization):
                run = await uow.runs.get(run_id, for_update=True)
                if run is None or run.status.terminal or run.status is RunStatus.CANCELLING:
                    continue
                target = RunStatus.CANCELLED if run.status is RunStatus.QUEUED else RunStatus.CANCELLING
                run.transition(target, now)
                await uow.runs.update(run)
                changed_runs.append(run)
            await uow.optimizations.update(optimization)
            await uow.commit()
        for run in changed_runs:
            await publish_run(self.bus, run)
        await publish_progress(self.bus, optimization, Progress.FINISHED)
        return optimization

    async def report(self, run_id: str, step: int, value: float) -> bool:
        """A trial reported its objective at ``step`` by name: see ``observe``."""
        return await self.observe(run_id, {step: value}, FROM_REPORTS)

    async def observe(self, run_id: str, values: Mapping[int, float], source: str = FROM_LOGS) -> bool:
        """Values of a trial's objective by step, as its run logged them (``FROM_LOGS``) or reported them
        by name (``FROM_REPORTS``): store them and say whether to prune the run. A trial that reports
        its objective is judged by its reports alone (they may count steps differently, e.g. epochs)."""
        if run_id in self._not_trials or not values:
            return False  # a run is a trial from its creation on, or never: no need to ask again
        async with self.uow() as uow:
            result = await uow.optimizations.result_for_run(run_id, for_update=True)
            optimization = await uow.optimizations.get(result.optimization_id) if result else None
            if result is None or optimization is None:
                if len(self._not_trials) >= _NOT_TRIALS_KEPT:
                    self._not_trials.clear()
                self._not_trials.add(run_id)
                return False
            if result.state is not ResultState.RUNNING or optimization.finished:
                return False
            held = result.metrics.get(OBJECTIVE_FROM)
            if held == FROM_REPORTS and source == FROM_LOGS:
                return False
            known = result.intermediate if held == source else {}
            result.intermediate = thinned({**known, **values})
            result.metrics = {**result.metrics, OBJECTIVE_FROM: source}
            prune = False
            if optimization.pruner not in (None, "none"):
                trials = [
                    result if t.id == result.id else t
                    for t in await uow.optimizations.all_results(optimization.id)
                ]
                advice = self.strategy.should_prune(optimization, trials, result)
                prune, result.search_state = advice.prune, advice.search_state
            await uow.optimizations.update_result(result)
            await uow.commit()
        step, value = max(values.items())
        event = OptimizationProgressed(optimization, Progress.TRIAL_REPORTED, result, step, value)
        await self.bus.publish([optimization_topic(optimization.id)], event)
        return prune

    async def objective_missing(self, run_id: str, logged: Sequence[str]) -> None:
        """A trial's attempt ends without its objective: keep the keys it did log, for the error."""
        if run_id in self._not_trials:
            return
        async with self.uow() as uow:
            result = await uow.optimizations.result_for_run(run_id, for_update=True)
            if result is None or result.state is not ResultState.RUNNING or result.intermediate:
                return
            result.metrics = {**result.metrics, LOGGED_KEYS: sorted(logged)[:MAX_LOGGED_KEYS]}
            await uow.optimizations.update_result(result)
            await uow.commit()

    def _search(
        self, optimization: Optimization, spec: OptimizationSpec, schema: dict[str, Any], base: dict[str, Any]
    ) -> None:
        objective = (spec.objective or "").strip()
        if not objective or len(objective) > 200:
            raise BadInput("a search needs an objective: the metric to optimize", field="objective")
        parameters = parse_space(spec.space)
        sampler, pruner = check_choice(spec.sampler, spec.pruner)
        max_trials = _positive(spec.max_trials, "maxTrials", DEFAULT_TRIALS, MAX_TRIALS)
        if sampler == "grid":
            max_trials = min(max_trials, grid_size(parameters))
        for name, parameter in parameters.items():
            for value in extremes(parameter):
                self._check_params(schema, {**base, name: value}, f"space.{name}")
        optimization.objective = objective
        optimization.direction = spec.direction or Direction.MINIMIZE
        optimization.space = dict(spec.space or {})
        optimization.sampler, optimization.pruner = sampler, pruner
        optimization.max_trials = max_trials
        optimization.max_parallel = _positive(
            spec.max_parallel, "maxParallel", min(4, max_trials), MAX_PARALLEL
        )

    def _tuning(self, optimization: Optimization, spec: OptimizationSpec) -> None:
        space = dict(spec.space or {})
        unknown = sorted(set(space) - set(TUNING_KNOBS))
        if unknown:
            raise BadInput(
                f"space.{unknown[0]}: a tuning takes {', '.join(TUNING_KNOBS)}", field="space", path="space"
            )
        variants = space.get("variants")
        if variants is not None and (
            not isinstance(variants, list) or not all(isinstance(v, str) for v in variants)
        ):
            raise BadInput("space.variants: a list of variant names", field="space", path="space.variants")
        tolerance = space.get("tolerance")
        if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, int | float)):
            raise BadInput("space.tolerance: a number", field="space", path="space.tolerance")
        objective = (spec.objective or "throughput").strip()
        if objective not in TUNING_OBJECTIVES:
            raise BadInput(
                f"a tuning's objective is one of {', '.join(TUNING_OBJECTIVES)}, not {objective!r}",
                field="objective",
            )
        optimization.objective = objective
        optimization.direction = spec.direction or TUNING_OBJECTIVES[objective]
        optimization.space = space
        optimization.max_trials, optimization.max_parallel = None, 1

    def _check_params(self, schema: dict[str, Any], params: dict[str, Any], where: str) -> None:
        errors = self.validator.errors(schema, params)
        if errors:
            path, message = errors[0]
            raise BadInput(f"{where}: params{path}: {message}", field=where.split(".")[0], path=where)

    @staticmethod
    async def _active_runs(uow: UnitOfWork, optimization: Optimization) -> Sequence[str]:
        query = RunQuery(
            project_ids=(optimization.project_id,),
            optimization_id=optimization.id,
            statuses=tuple(s for s in RunStatus if not s.terminal),
        )
        page = await uow.runs.find(query, PageRequest(first=MAX_TRIALS))
        return [run.id for run in page.items]


def _positive(value: int | None, name: str, default: int | None, most: int | None = None) -> Any:
    if value is None:
        return default
    if value < 1 or (most is not None and value > most):
        raise BadInput(
            f"{name} must be between 1 and {most}" if most else f"{name} must be positive", field=name
        )
    return value
