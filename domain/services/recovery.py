"""Bringing runs back in line after executors were lost: re-queue, retry as a new attempt, or fail.

Every change here is made under the run's row lock after re-checking that the run is still in the state
that was judged (its status, attempt and last heartbeat), so any number of API replicas may act on the
same observation: the first one changes the run, the others find it changed and do nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ptw.domain.clock import utcnow
from ptw.domain.events import RunLogged, run_topic
from ptw.domain.ports import EventBus, JobQueue, UnitOfWork, UnitOfWorkFactory
from ptw.domain.run_story import AttemptOutcome
from ptw.domain.runs import Run, RunJob, RunStatus
from ptw.domain.services.run_story import end_attempt, keep_line
from ptw.domain.services.runs import job_for, publish_run

ACTIVE = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING)


@dataclass(frozen=True)
class Silence:
    """An active attempt whose last heartbeat (``heartbeat_at``) was seen unchanged for too long."""

    run_id: str
    attempt: int
    heartbeat_at: datetime | None
    executor: str | None = None


def settle_failure(run: Run, reason: str, max_attempts: int, now: datetime) -> str:
    """The attempt in progress failed without the training code's say (its executor or process died).
    A run being cancelled ends CANCELLED; one that spent ``max_attempts`` failed attempts (drained ones do
    not count) ends FAILED; any other is queued again as attempt + 1. Returns a line saying which."""
    attempt = run.attempt
    if run.status is RunStatus.CANCELLING:
        run.transition(RunStatus.CANCELLED, now)
        return f"attempt {attempt}: {reason}; the run was being cancelled: CANCELLED"
    if run.failed_attempts >= max_attempts:
        run.transition(RunStatus.FAILED, now)
        drained = f" (and {run.drains} handed back by stopping workers)" if run.drains else ""
        run.error = f"gave up after {run.failed_attempts} attempts{drained}: {reason}"
        return f"attempt {attempt}: {run.error}"
    run.requeue(now)
    run.error = f"attempt {attempt}: {reason}; retrying as attempt {run.attempt}"
    return f"{run.error} from the last checkpoint"


def settle_silent_client(run: Run, reason: str, now: datetime) -> str:
    """An external run's process stopped heartbeating: it was killed, crashed or lost the network. There
    is nothing to retry (the process is the user's): FAILED, or CANCELLED when it was being cancelled."""
    if run.status is RunStatus.CANCELLING:
        run.transition(RunStatus.CANCELLED, now)
        return f"the tracking process stopped heartbeating ({reason}) while the run was being cancelled"
    run.transition(RunStatus.FAILED, now)
    run.error = (
        f"the tracking process stopped heartbeating ({reason}): it was killed, crashed or lost its "
        "connection to the server before it finished the run"
    )
    return run.error


def settle_drain(run: Run, reason: str, now: datetime) -> str:
    """The worker of the attempt stopped on purpose (shutdown, scale-down): queue the run again without
    counting a failed attempt. The attempt number still grows, so a late delivery of the old one is stale."""
    attempt = run.attempt
    if run.status is RunStatus.CANCELLING:
        run.transition(RunStatus.CANCELLED, now)
        return f"attempt {attempt}: {reason}; the run was being cancelled: CANCELLED"
    run.requeue(now, drained=True)
    return f"attempt {attempt}: {reason}; queued again as attempt {run.attempt} from the last checkpoint"


async def next_job(uow: UnitOfWork, run: Run) -> RunJob | None:
    """The job of the run's current attempt, resuming from its latest checkpoint (None: workflow gone)."""
    workflow = await uow.workflows.get(run.workflow_id)
    if workflow is None:
        return None
    return job_for(run, workflow, await uow.checkpoints.latest(run.id))


async def announce(bus: EventBus, run: Run, line: str, seq: int | None = None) -> None:
    """Publish the run's change and a system line of runEvents saying why it changed (``seq``: the
    line's place among the run's stored lines, see ``keep_line``)."""
    await publish_run(bus, run)
    event = RunLogged(run.id, run.project_id, line, "system", utcnow(), seq)
    await bus.publish([run_topic(run.id)], event)


@dataclass
class RecoveryService:
    uow: UnitOfWorkFactory
    bus: EventBus
    queue: JobQueue
    max_attempts: int = 3

    async def requeue_waiting(self, run_ids: Sequence[str] | None = None) -> int:
        """Enqueue every QUEUED run (or those of ``run_ids``) again; the queue is idempotent per attempt, and
        an attempt whose job Redis lost is queued anew. Returns how many were enqueued."""
        async with self.uow() as uow:
            if run_ids is None:
                waiting = await uow.runs.with_status([RunStatus.QUEUED])
            else:
                waiting = [r for r in await uow.runs.get_many(run_ids) if r.status is RunStatus.QUEUED]
            jobs = [job for run in waiting if (job := await next_job(uow, run)) is not None]
        for job in jobs:
            await self.queue.enqueue(job)
        return len(jobs)

    async def active(self) -> list[Run]:
        """Runs whose attempt is in an executor's hands (the run monitor watches their heartbeats)."""
        async with self.uow() as uow:
            return await uow.runs.with_status(list(ACTIVE))

    async def recover_silent(self, silences: Sequence[Silence], reason: str) -> list[Run]:
        """Settle the attempts whose executor went silent, each only if it is still the attempt that was
        judged, with the heartbeat that was judged: an executor that beat meanwhile, a run finished or
        claimed again by another executor is left alone. Returns the runs changed."""
        changed: list[tuple[Run, str, int | None]] = []
        for silence in silences:
            async with self.uow() as uow:
                run = await uow.runs.get(silence.run_id, for_update=True)
                if (
                    run is None
                    or run.status not in ACTIVE
                    or run.attempt != silence.attempt
                    or run.heartbeat_at != silence.heartbeat_at
                ):
                    continue
                now = utcnow()
                if run.external:
                    line = settle_silent_client(run, reason, now)
                else:
                    who = f"executor {run.executor}" if run.executor else "the executor"
                    await end_attempt(
                        uow, run, run.attempt, AttemptOutcome.LOST, f"{who} lost ({reason})", now
                    )
                    line = settle_failure(run, f"{who} lost ({reason})", self.max_attempts, now)
                await uow.runs.update(run)
                seq = await keep_line(uow, run.id, line, now)
                job = await next_job(uow, run) if run.status is RunStatus.QUEUED else None
                await uow.commit()
            changed.append((run, line, seq))
            await announce(self.bus, run, line, seq)
            if job is not None:
                await self.queue.enqueue(job)
        return [run for run, _, _ in changed]

    async def flag_unplaceable(self, resource_classes: Collection[str], waited: timedelta) -> list[Run]:
        """Say, in ``error`` and a system line of runEvents, why QUEUED runs of these resource classes
        (which no live executor serves) wait, once they waited ``waited``. They stay queued: an executor
        of their class that comes later runs them (and their ``error`` is rewritten when they end)."""
        if not resource_classes:
            return []
        cutoff = utcnow() - waited
        async with self.uow() as uow:
            waiting = await uow.runs.with_status([RunStatus.QUEUED])
        flagged: list[tuple[Run, str]] = []
        for candidate in waiting:
            since = candidate.updated_at or candidate.created_at
            if candidate.resource_class not in resource_classes or since > cutoff:
                continue
            reason = (
                f"waiting: no executor for resource class {candidate.resource_class!r} has been alive "
                f"for {waited.total_seconds():g} s; the run stays queued until one comes"
            )
            if candidate.error == reason:
                continue
            async with self.uow() as uow:
                run = await uow.runs.get(candidate.id, for_update=True)
                if run is None or run.status is not RunStatus.QUEUED or run.error == reason:
                    continue
                run.error = reason
                await uow.runs.update(run)
                seq = await keep_line(uow, run.id, reason, utcnow())
                await uow.commit()
            flagged.append((run, reason))
            await announce(self.bus, run, reason, seq)
        return [run for run, _ in flagged]

    async def recover_lost(
        self,
        run_ids: Sequence[str] | None = None,
        reason: str = "executor lost",
        held_by: Collection[str] | None = None,
    ) -> list[Run]:
        """Runs whose executor is known to be gone: retried as attempt + 1 from their last checkpoint, or
        FAILED once ``max_attempts`` is spent; a run being cancelled ends CANCELLED. ``None`` means every
        active run (embedded start-up: no executor of a previous process survives it). With ``held_by``,
        only runs still held by one of those executors (the caller's own) are touched. External runs are
        never touched here: no executor holds them (the run monitor judges their heartbeats)."""
        changed: list[tuple[Run, str, int | None]] = []
        async with self.uow() as uow:
            candidates = await uow.runs.with_status(list(ACTIVE))
            for run in candidates:
                if run_ids is not None and run.id not in run_ids:
                    continue
                locked = await uow.runs.get(run.id, for_update=True)
                if locked is None or locked.status not in ACTIVE or locked.external:
                    continue
                if held_by is not None and locked.executor not in held_by:
                    continue
                now = utcnow()
                await end_attempt(uow, locked, locked.attempt, AttemptOutcome.LOST, reason, now)
                line = settle_failure(locked, reason, self.max_attempts, now)
                await uow.runs.update(locked)
                changed.append((locked, line, await keep_line(uow, locked.id, line, now)))
            await uow.commit()
        for run, line, seq in changed:
            await announce(self.bus, run, line, seq)
        # Every queued run when all were recovered (embedded start-up: the in-process queue is empty).
        await self.requeue_waiting(None if run_ids is None else [run.id for run, _, _ in changed])
        return [run for run, _, _ in changed]
