"""The executor's side of a run: claim an attempt, report progress, finish exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ptw.domain.artifacts import KIND_CHECKPOINT
from ptw.domain.clock import new_id, utcnow
from ptw.domain.errors import NotFound
from ptw.domain.events import RunLogged, run_topic
from ptw.domain.optimizations import Optimization, OptimizationKind
from ptw.domain.ports import ArtifactFiles, EventBus, JobQueue, UnitOfWork, UnitOfWorkFactory
from ptw.domain.quotas import Quotas
from ptw.domain.run_story import AttemptOutcome, outcome_of
from ptw.domain.runs import Checkpoint, Run, RunJob, RunStatus
from ptw.domain.services.artifacts import delete_files, prune_checkpoints
from ptw.domain.services.recovery import ACTIVE, announce, next_job, settle_drain, settle_failure
from ptw.domain.services.run_story import (
    Output,
    begin_attempt,
    end_attempt,
    keep_line,
    keep_output,
    note_device,
)
from ptw.domain.services.runs import job_for, publish_run


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, as the supervisor saw it."""

    status: RunStatus
    summary: dict[str, Any] | None = None
    error: str | None = None
    # The process died without a result or an error of the training code (killed, out of memory, a
    # crash): like a lost executor, the run is retried until ``max_attempts`` failed attempts.
    retryable: bool = False
    how: AttemptOutcome | None = None  # how the attempt ended when its status does not say it (a timeout)


async def _objective(uow: UnitOfWork, run: Run) -> str | None:
    """The metric a search's trial is judged by (the supervisor tells the optimizer its values)."""
    if run.optimization_id is None:
        return None
    optimization: Optimization | None = await uow.optimizations.get(run.optimization_id)
    if optimization is None or optimization.kind is not OptimizationKind.HYPERPARAMETER_SEARCH:
        return None
    return optimization.objective


class AtQuota(Exception):
    """The run's project has as many runs started as its running-runs quota allows: the run stays QUEUED
    (with the reason in ``Run.waiting``) and its job should be delivered again later, without holding an
    executor slot meanwhile."""


@dataclass
class ExecutionService:
    uow: UnitOfWorkFactory
    bus: EventBus
    # With a queue, a retryable failure (see Outcome) and a drained attempt are queued again at once.
    queue: JobQueue | None = None
    max_attempts: int = 3
    files: ArtifactFiles | None = None  # deletes the files of checkpoints beyond retention
    quotas: Quotas = field(default_factory=Quotas)

    async def claim(self, run_id: str, attempt: int, executor: str) -> RunJob | None:
        """QUEUED → STARTING for this attempt, or None when the job is stale or a duplicate delivery.
        Raises AtQuota when the project already has its quota of runs started (see ``_within_quota``)."""
        async with self.uow() as uow:
            run = await uow.runs.get(run_id, for_update=True)
            if run is None or run.attempt != attempt or run.status is not RunStatus.QUEUED:
                return None
            workflow = await uow.workflows.get(run.workflow_id)
            if workflow is None:
                return None
            waiting = await self._over_quota(uow, run)
            if waiting is not None:
                if run.waiting != waiting:  # kept and told once, not at each delivery
                    run.waiting = waiting
                    await uow.runs.update(run)
                    await uow.commit()
                    await publish_run(self.bus, run)
                raise AtQuota(waiting)
            run.waiting = None
            run.transition(RunStatus.STARTING, utcnow())
            run.executor = executor
            run.heartbeat_at = run.updated_at
            await uow.runs.update(run)
            await begin_attempt(uow, run, run.updated_at or utcnow())
            # A run's checkpoints are its earlier attempts': a first attempt has none to resume from.
            checkpoint = await uow.checkpoints.latest(run_id) if attempt > 1 else None
            objective = await _objective(uow, run)
            await uow.commit()
        await publish_run(self.bus, run)
        return job_for(run, workflow, checkpoint, objective)

    async def _over_quota(self, uow: UnitOfWork, run: Run) -> str | None:
        """Why the run may not start now, or None. The project is locked first, so claims of its runs by
        several executors count its started runs one at a time (the count and the claim share the lock's
        transaction). Tracked runs (``ptw.init``) never reach an executor and are not counted."""
        limit = self.quotas.running_runs(await uow.projects.get_quota(run.project_id))
        if limit is None:
            return None
        await uow.projects.lock(run.project_id)
        started = await uow.runs.count_with_status(run.project_id, list(ACTIVE), external=False)
        if started < limit:
            return None
        return f"waiting: project at its running-runs quota {limit}"

    async def node_job(self, run_id: str, attempt: int, *, claimed: bool) -> RunJob | None:
        """The job of an attempt, read without claiming it: for a multi-node run's leader before it claims
        (``claimed`` False: the attempt must still be QUEUED) and for its other nodes after (True: the
        attempt must be in progress). None when the attempt is not, or no longer, that."""
        async with self.uow() as uow:
            run = await uow.runs.get(run_id)
            wanted = ACTIVE if claimed else (RunStatus.QUEUED,)
            if run is None or run.attempt != attempt or run.status not in wanted:
                return None
            workflow = await uow.workflows.get(run.workflow_id)
            checkpoint = await uow.checkpoints.latest(run_id)
        return job_for(run, workflow, checkpoint) if workflow is not None else None

    async def note_waiting(self, run_id: str, attempt: int, reason: str) -> None:
        """Say on a QUEUED run (its ``error`` and a system line, once per reason) why it waits."""
        async with self.uow() as uow:
            run = await uow.runs.get(run_id, for_update=True)
            if run is None or run.attempt != attempt or run.status is not RunStatus.QUEUED:
                return
            if run.error == reason:
                return
            run.error = reason
            await uow.runs.update(run)
            seq = await keep_line(uow, run.id, reason, utcnow())
            await uow.commit()
        await announce(self.bus, run, reason, seq)

    async def mark_running(
        self, run_id: str, attempt: int, device: str, entered_at: datetime | None = None
    ) -> Run | None:
        """STARTING → RUNNING: training code was entered (at ``entered_at``, default now) on ``device``;
        None if the attempt is stale."""
        async with self.uow() as uow:
            run = await uow.runs.get(run_id, for_update=True)
            if run is None or run.attempt != attempt or run.status.terminal:
                return None
            run.device = device
            if run.status is RunStatus.STARTING:
                run.transition(RunStatus.RUNNING, entered_at or utcnow())
            await uow.runs.update(run)
            await note_device(uow, run)
            await uow.commit()
        await publish_run(self.bus, run)
        return run

    async def heartbeat(self, run_id: str, attempt: int, executor: str) -> bool:
        """The executor still runs this attempt; False when it is no longer the run's attempt in progress
        (finished, re-queued by the run monitor, or claimed by another executor)."""
        async with self.uow() as uow:
            run = await uow.runs.get(run_id, for_update=True)
            if run is None or run.attempt != attempt or run.status not in ACTIVE or run.executor != executor:
                return False
            run.heartbeat_at = utcnow()
            await uow.runs.update(run)
            await uow.commit()
        return True

    async def release(self, run_id: str, attempt: int, reason: str) -> Run | None:
        """The executor hands the attempt back unfinished because it is shutting down: the run is queued
        again as attempt + 1 without counting a failure (CANCELLED if it was being cancelled). None when
        the attempt is stale or the run already finished."""
        async with self.uow() as uow:
            run = await uow.runs.get(run_id, for_update=True)
            if run is None or run.attempt != attempt or run.status not in ACTIVE:
                return None
            now = utcnow()
            how = AttemptOutcome.CANCELLED if run.status is RunStatus.CANCELLING else AttemptOutcome.DRAINED
            await end_attempt(uow, run, attempt, how, reason, now)
            line = settle_drain(run, reason, now)
            await uow.runs.update(run)
            seq = await keep_line(uow, run.id, line, now)
            job = await next_job(uow, run) if run.status is RunStatus.QUEUED else None
            await uow.commit()
        await announce(self.bus, run, line, seq)
        if job is not None and self.queue is not None:
            await self.queue.enqueue(job)
        return run

    async def status(self, run_id: str) -> RunStatus | None:
        async with self.uow() as uow:
            run = await uow.runs.get(run_id)
        return run.status if run else None

    async def add_checkpoint(
        self,
        run_id: str,
        attempt: int,
        step: int | None,
        uri: str,
        size: int,
        name: str | None = None,
        kind: str = KIND_CHECKPOINT,
    ) -> Checkpoint:
        """Record an artifact the attempt stored: a checkpoint (older ones beyond the workflow's
        retention are deleted, files too), or a named file (replacing an earlier one of that name)."""
        name = name or uri.rstrip("/").rsplit("/", 1)[-1]
        checkpoint = Checkpoint(new_id(), run_id, attempt, step, uri, size, utcnow(), name, kind)
        async with self.uow() as uow:
            run = await uow.runs.get(run_id, for_update=True)
            if run is None:
                raise NotFound.of("Run", run_id)
            known = await uow.checkpoints.for_run(run_id)
            if kind != KIND_CHECKPOINT:  # the same object was overwritten: one row for it
                await uow.checkpoints.delete([a.id for a in known if a.kind == kind and a.name == name])
            await uow.checkpoints.add(checkpoint)
            gone = await prune_checkpoints(uow, run) if kind == KIND_CHECKPOINT else []
            await uow.commit()
        await delete_files(self.files, gone)
        return checkpoint

    async def log(self, run_id: str, project_id: str, message: str, stream: str = "system") -> None:
        await self.log_lines(run_id, project_id, [(stream, message, utcnow())])

    async def log_lines(self, run_id: str, project_id: str, lines: Sequence[Output]) -> None:
        """Output lines of the run: stored (within the run's cap) and published to runEvents."""
        async with self.uow() as uow:
            run = await uow.runs.get(run_id, for_update=True)  # one writer of the run's seqs at a time
            kept = await keep_output(uow, run_id, lines) if run is not None else []
            await uow.commit()
        seqs = {i: line.seq for i, line in enumerate(kept) if i < len(lines) and line.line == lines[i][1]}
        topic = [run_topic(run_id)]
        for i, (stream, message, at) in enumerate(lines):
            await self.bus.publish(topic, RunLogged(run_id, project_id, message, stream, at, seqs.get(i)))

    async def finish(
        self,
        run_id: str,
        attempt: int,
        outcome: Outcome,
        device: str | None = None,
        entered_at: datetime | None = None,
    ) -> Run | None:
        """Write the attempt's end once; a stale attempt or an already finished run changes nothing.
        ``device`` (and ``entered_at``): the training function was entered there (then), but the run was
        not marked running yet (it ended within moments): it goes through RUNNING in this transaction."""
        if outcome.retryable and self.queue is not None:
            return await self._retry(run_id, attempt, outcome, device)
        async with self.uow() as uow:
            run = await uow.runs.get(run_id, for_update=True)
            if run is None or run.attempt != attempt or run.status.terminal:
                return None
            target = outcome.status
            if run.status is RunStatus.CANCELLING and target is not RunStatus.SUCCEEDED:
                target = RunStatus.CANCELLED
            if run.status is RunStatus.STARTING and device is not None:
                run.device = device
                run.transition(RunStatus.RUNNING, entered_at or utcnow())
            elif run.status is RunStatus.STARTING and target in (RunStatus.SUCCEEDED, RunStatus.PRUNED):
                run.transition(RunStatus.RUNNING, utcnow())
            if target is RunStatus.CANCELLED and run.status in (RunStatus.STARTING, RunStatus.RUNNING):
                run.transition(RunStatus.CANCELLING, utcnow())  # stopped by the executor itself (shutdown)
            run.transition(target, utcnow())
            how = outcome.how if target is outcome.status and outcome.how else outcome_of(target)
            await end_attempt(uow, run, attempt, how, outcome.error, run.updated_at or utcnow())
            run.summary = outcome.summary
            run.error = outcome.error
            await uow.runs.update(run)
            await uow.commit()
        await publish_run(self.bus, run)
        return run

    async def _retry(self, run_id: str, attempt: int, outcome: Outcome, device: str | None) -> Run | None:
        async with self.uow() as uow:
            run = await uow.runs.get(run_id, for_update=True)
            if run is None or run.attempt != attempt or run.status not in ACTIVE:
                return None
            if run.status is RunStatus.STARTING and device is not None:
                run.device = device  # the attempt's record keeps where it ran
            now, reason = utcnow(), outcome.error or "the run's process died"
            await end_attempt(uow, run, attempt, AttemptOutcome.CRASHED, reason, now)
            line = settle_failure(run, reason, self.max_attempts, now)
            await uow.runs.update(run)
            seq = await keep_line(uow, run.id, line, now)
            job = await next_job(uow, run) if run.status is RunStatus.QUEUED else None
            await uow.commit()
        await announce(self.bus, run, line, seq)
        if job is not None and self.queue is not None:
            await self.queue.enqueue(job)
        return run
