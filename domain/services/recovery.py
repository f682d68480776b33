"""Bringing runs back in line after executors were lost: re-queue, retry as a new attempt, or fail."""

from __future__ import annotations

from dataclasses import dataclass

from domain.clock import utcnow
from domain.ports import EventBus, JobQueue, UnitOfWorkFactory
from domain.runs import Run, RunStatus
from domain.services.runs import job_for, publish_run

ACTIVE = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING)


@dataclass
class RecoveryService:
    uow: UnitOfWorkFactory
    bus: EventBus
    queue: JobQueue
    max_attempts: int = 3

    async def requeue_waiting(self) -> int:
        """Enqueue every QUEUED run again (the queue is idempotent per attempt); returns how many."""
        async with self.uow() as uow:
            waiting = await uow.runs.with_status([RunStatus.QUEUED])
            jobs = []
            for run in waiting:
                workflow = await uow.workflows.get(run.workflow_id)
                if workflow is not None:
                    jobs.append(job_for(run, workflow, await uow.checkpoints.latest(run.id)))
        for job in jobs:
            await self.queue.enqueue(job)
        return len(jobs)

    async def recover_lost(
        self, run_ids: list[str] | None = None, reason: str = "executor lost"
    ) -> list[Run]:
        """Runs whose executor is gone: retried as attempt + 1 from their last checkpoint, or FAILED once
        ``max_attempts`` is spent; a run being cancelled ends CANCELLED. ``None`` means every active run
        (embedded start-up: no executor of a previous process survives it)."""
        changed: list[Run] = []
        async with self.uow() as uow:
            candidates = await uow.runs.with_status(list(ACTIVE))
            for run in candidates:
                if run_ids is not None and run.id not in run_ids:
                    continue
                locked = await uow.runs.get(run.id, for_update=True)
                if locked is None or locked.status not in ACTIVE:
                    continue
                self._settle(locked, reason)
                await uow.runs.update(locked)
                changed.append(locked)
            await uow.commit()
        for run in changed:
            await publish_run(self.bus, run)
        await self.requeue_waiting()
        return changed

    def _settle(self, run: Run, reason: str) -> None:
        now = utcnow()
        if run.status is RunStatus.CANCELLING:
            run.transition(RunStatus.CANCELLED, now)
        elif run.attempt >= self.max_attempts:
            run.transition(RunStatus.FAILED, now)
            run.error = f"{reason}; gave up after {run.attempt} attempts"
        else:
            run.requeue(now)
