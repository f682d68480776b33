"""The OptimizationDriver: advances every active optimization, idempotently, from what the database holds.

Each tick, for each QUEUED or RUNNING optimization it holds the lease of (one driver per optimization
across API replicas), it runs one transaction under the optimization's row lock that: settles the trials
whose runs ended, starts trials while fewer than ``max_parallel`` run and fewer than ``max_trials`` exist
(each trial's Run and OptimizationResult inserted together, under unique keys), and finishes the
optimization once nothing is left to run. Jobs are queued and events published after the commit. A driver
killed at any point leaves a state the next tick, in any process, carries on from: nothing is lost, and a
trial is never created twice (its number and its run's idempotency key are unique).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from ptw.domain.clock import new_id, utcnow
from ptw.domain.events import Progress
from ptw.domain.optimizations import (
    Optimization,
    OptimizationKind,
    OptimizationResult,
    OptimizationStatus,
    ResultState,
)
from ptw.domain.ports import (
    EventBus,
    JobQueue,
    OptimizationLease,
    ParamsValidator,
    SearchStrategy,
    UnitOfWork,
    UnitOfWorkFactory,
)
from ptw.domain.runs import Run, RunJob, RunStatus
from ptw.domain.services.optimizations import TUNER_WORKFLOW, publish_progress, tuning_params
from ptw.domain.services.runs import job_for, publish_run
from ptw.domain.trials import OBJECTIVE_MISSING, best_of, running, settle, tuning_results
from ptw.domain.workflows import Workflow

log = logging.getLogger(__name__)
_SETTLED = {
    ResultState.COMPLETE: Progress.TRIAL_COMPLETED,
    ResultState.PRUNED: Progress.TRIAL_PRUNED,
    ResultState.FAILED: Progress.TRIAL_FAILED,
}


def trial_key(optimization_id: str, number: int) -> str:
    return f"opt:{optimization_id}:trial:{number}"


def tuning_key(optimization_id: str) -> str:
    return f"opt:{optimization_id}:tuning"


@dataclass
class _Step:
    """What one advance did, to act on once it is committed."""

    jobs: list[RunJob] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    events: list[tuple[Progress, OptimizationResult | None]] = field(default_factory=list)


@dataclass
class OptimizationDriver:
    uow: UnitOfWorkFactory
    bus: EventBus
    queue: JobQueue
    strategy: SearchStrategy
    lease: OptimizationLease
    validator: ParamsValidator
    interval: float = 1.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """Tick now rather than at the next interval (a search was started)."""
        self._wake.set()

    async def run(self) -> None:
        """Tick until cancelled; a failing tick is logged and tried again at the next one."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("the optimization driver's tick failed; trying again")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def tick(self) -> int:
        """Advance every active optimization this process may drive now; how many it advanced."""
        async with self.uow() as uow:
            active = await uow.optimizations.with_status(
                [OptimizationStatus.QUEUED, OptimizationStatus.RUNNING]
            )
        advanced = 0
        for optimization in active:
            try:
                async with self.lease.hold(optimization.id) as held:
                    if held:
                        await self.advance(optimization.id)
                        advanced += 1
            except Exception:  # one search's trouble (the database, a sampler) must not stall the others
                log.exception("cannot advance optimization %s; trying again next tick", optimization.id)
        return advanced

    async def advance(self, optimization_id: str) -> Optimization | None:
        step = _Step()
        async with self.uow() as uow:
            optimization = await uow.optimizations.get(optimization_id, for_update=True)
            if optimization is None or optimization.finished:
                return optimization
            workflow = await uow.workflows.get(optimization.workflow_id)
            if optimization.status is OptimizationStatus.QUEUED:
                optimization.status = OptimizationStatus.RUNNING
                optimization.started_at = utcnow()
                step.events.append((Progress.STARTED, None))
            if workflow is None:
                self._finish(optimization, step, [], "the optimization's workflow is gone")
            elif optimization.kind is OptimizationKind.PERFORMANCE_TUNING:
                await self._advance_tuning(uow, optimization, workflow, step)
            else:
                await self._advance_search(uow, optimization, workflow, step)
            await uow.optimizations.update(optimization)
            await uow.commit()
        for job in step.jobs:
            await self.queue.enqueue(job)
        for run in step.runs:
            await publish_run(self.bus, run)
        for progress, result in step.events:
            await publish_progress(self.bus, optimization, progress, result)
        return optimization

    async def _advance_search(
        self, uow: UnitOfWork, optimization: Optimization, workflow: Workflow, step: _Step
    ) -> None:
        results = await uow.optimizations.all_results(optimization.id)
        best = best_of(optimization, results)
        results = [await self._settled(uow, optimization, r, step) for r in results]
        missing = next((r for r in results if r.metrics.get(OBJECTIVE_MISSING)), None)
        if missing is not None and best is None:
            # The first trial to end shows the objective is not what the workflow logs: every other
            # trial would end the same, so the search stops now and says what was logged instead.
            await self._stop_trials(uow, results, step)
            self._finish(optimization, step, results, f"trial {missing.number}: {missing.metrics['error']}")
            return
        active = len(running(results))
        max_trials = optimization.max_trials or 0
        while not self._out_of_time(optimization) and active < (optimization.max_parallel or 1):
            if len(results) >= max_trials:
                break
            results.append(await self._start_trial(uow, optimization, workflow, results, step))
            active += 1
        new_best = best_of(optimization, results)
        if new_best is not None and (best is None or new_best.id != best.id):
            step.events.append((Progress.NEW_BEST, new_best))
        if active == 0 and (len(results) >= max_trials or self._out_of_time(optimization)):
            self._finish(optimization, step, results, None)

    async def _settled(
        self, uow: UnitOfWork, optimization: Optimization, result: OptimizationResult, step: _Step
    ) -> OptimizationResult:
        if result.state is not ResultState.RUNNING or result.run_id is None:
            return result
        run = await uow.runs.get(result.run_id)
        if run is not None and not run.status.terminal:
            return result
        # Read again under its lock: the run's last reports are committed before the run ended.
        locked = await uow.optimizations.result_for_run(result.run_id, for_update=True) or result
        ended = settle(locked, run, optimization.objective)
        await uow.optimizations.update_result(ended)
        step.events.append((_SETTLED[ended.state], ended))
        return ended

    async def _stop_trials(self, uow: UnitOfWork, results: list[OptimizationResult], step: _Step) -> None:
        now = utcnow()
        for index, result in enumerate(results):
            if result.state is not ResultState.RUNNING:
                continue
            result = replace(
                result, state=ResultState.FAILED, metrics={**result.metrics, "error": "the search failed"}
            )
            results[index] = result
            await uow.optimizations.update_result(result)
            run = await uow.runs.get(result.run_id, for_update=True) if result.run_id else None
            if run is None or run.status.terminal or run.status is RunStatus.CANCELLING:
                continue
            run.transition(
                RunStatus.CANCELLED if run.status is RunStatus.QUEUED else RunStatus.CANCELLING, now
            )
            await uow.runs.update(run)
            step.runs.append(run)

    async def _start_trial(
        self,
        uow: UnitOfWork,
        optimization: Optimization,
        workflow: Workflow,
        results: list[OptimizationResult],
        step: _Step,
    ) -> OptimizationResult:
        """Trial ``len(results)``: its Run and its result, in this transaction."""
        number = len(results)
        suggestion = self.strategy.suggest(optimization, results)
        params = {**workflow.defaults, **optimization.params, **suggestion.config}
        result = OptimizationResult(
            id=new_id(),
            optimization_id=optimization.id,
            config=suggestion.config,
            created_at=utcnow(),
            number=number,
            search_state=suggestion.search_state,
        )
        errors = self.validator.errors(workflow.params_schema, params)
        if errors:
            path, message = errors[0]
            result.state = ResultState.FAILED
            result.metrics = {"error": f"params{path}: {message}"}
            await uow.optimizations.add_result(result)
            step.events.append((Progress.TRIAL_FAILED, result))
            return result
        run = self._new_run(optimization, workflow, params, trial_key(optimization.id, number))
        result.run_id = run.id
        await uow.runs.add(run)
        await uow.optimizations.add_result(result)
        step.jobs.append(job_for(run, workflow, None))
        step.runs.append(run)
        step.events.append((Progress.TRIAL_STARTED, result))
        return result

    async def _advance_tuning(
        self, uow: UnitOfWork, optimization: Optimization, workflow: Workflow, step: _Step
    ) -> None:
        """A performance tuning is one run of the tuner workflow; its summary's variants become results."""
        key = tuning_key(optimization.id)
        run = await uow.runs.get_by_idempotency_key(optimization.project_id, key)
        if run is None:
            tuner = await uow.workflows.get_by_name(TUNER_WORKFLOW, None)
            if tuner is None:
                self._finish(optimization, step, [], "performance tuning is not available on this server")
                return
            run = self._new_run(optimization, tuner, tuning_params(optimization, workflow, tuner), key)
            await uow.runs.add(run)
            step.jobs.append(job_for(run, tuner, None))
            step.runs.append(run)
            return
        if not run.status.terminal:
            return
        results = await uow.optimizations.all_results(optimization.id)
        if not results:
            results = tuning_results(optimization, run, optimization.space.get("tolerance"))
            for result in results:
                await uow.optimizations.add_result(result)
                step.events.append((_SETTLED[result.state], result))
        error = None if results else (run.error or f"the tuning run ended {run.status.value}")
        self._finish(optimization, step, results, error)

    def _finish(
        self, optimization: Optimization, step: _Step, results: list[OptimizationResult], error: str | None
    ) -> None:
        best = best_of(optimization, results)
        if error is None and best is None:
            counts = {s: sum(r.state is s for r in results) for s in ResultState}
            error = (
                f"no trial completed ({counts[ResultState.FAILED]} failed, "
                f"{counts[ResultState.PRUNED]} pruned, {counts[ResultState.COMPLETE]} without a usable value)"
            )
        optimization.status = OptimizationStatus.FAILED if error else OptimizationStatus.SUCCEEDED
        optimization.error = error
        optimization.finished_at = utcnow()
        step.events.append((Progress.FINISHED, best))

    @staticmethod
    def _out_of_time(optimization: Optimization) -> bool:
        budget, started = optimization.time_budget_seconds, optimization.started_at
        return budget is not None and started is not None and utcnow() >= started + timedelta(seconds=budget)

    @staticmethod
    def _new_run(optimization: Optimization, workflow: Workflow, params: dict[str, Any], key: str) -> Run:
        now = utcnow()
        return Run(
            id=new_id(),
            project_id=optimization.project_id,
            workflow_id=workflow.id,
            params=params,
            created_at=now,
            updated_at=now,
            resource_class=workflow.resources.resource_class,
            idempotency_key=key,
            optimization_id=optimization.id,
        )
