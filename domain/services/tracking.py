"""External runs: created, kept alive and ended by the tracking client (``ptw.init``) in the user's process.

Such a run holds no executor. It goes straight to RUNNING, its ``heartbeat_at`` is written by the
client's background thread, and the run monitor fails it when those heartbeats stop (see
``recovery.settle_silent_client``). Metrics, subscriptions and the UI treat it like any other run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ptw.domain.clock import new_id, utcnow
from ptw.domain.errors import BadInput, Conflict, NotFound
from ptw.domain.metrics import Series
from ptw.domain.ports import EventBus, UnitOfWork, UnitOfWorkFactory
from ptw.domain.run_labels import checked_name, checked_tags
from ptw.domain.runs import Run, RunStatus
from ptw.domain.services.metrics import MetricService
from ptw.domain.services.runs import MAX_IDEMPOTENCY_KEY, publish_run
from ptw.domain.tenancy import Actor, Role
from ptw.domain.workflows import EXTERNAL_WORKFLOW

ENDINGS = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
MAX_ERROR = 20_000


def _checked_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object", field=what)
    return value


@dataclass
class TrackingService:
    uow: UnitOfWorkFactory
    bus: EventBus
    metrics: MetricService

    async def start(
        self,
        actor: Actor,
        project_id: str | None = None,
        name: str | None = None,
        params: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        idempotency_key: str | None = None,
        device: str | None = None,
    ) -> Run:
        """A RUNNING external run; the same ``idempotency_key`` answers the same run (a retried call)."""
        project_id = actor.default_project(project_id)
        actor.require(project_id, Role.MEMBER)
        params = _checked_object(params if params is not None else {}, "params")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise BadInput(
                f"idempotencyKey must be 1-{MAX_IDEMPOTENCY_KEY} characters", field="idempotencyKey"
            )
        async with self.uow() as uow:
            workflow = await uow.workflows.get_by_name(EXTERNAL_WORKFLOW, None)
            if workflow is None:
                raise NotFound.of("Workflow", EXTERNAL_WORKFLOW)
            if idempotency_key:
                earlier = await uow.runs.get_by_idempotency_key(project_id, idempotency_key)
                if earlier is not None:
                    return earlier
            now = utcnow()
            run = Run(
                id=new_id(),
                project_id=project_id,
                workflow_id=workflow.id,
                params=params,
                created_at=now,
                idempotency_key=idempotency_key,
                name=checked_name(name) if name is not None else "",
                tags=checked_tags(tags),
                external=True,
                device=device[:200] if device else None,
            )
            run.transition(RunStatus.STARTING, now)
            run.transition(RunStatus.RUNNING, now)
            run.heartbeat_at = now
            await uow.runs.add(run)
            await uow.commit()
        await publish_run(self.bus, run)
        return run

    async def heartbeat(self, actor: Actor, run_id: str, summary: dict[str, Any] | None = None) -> Run:
        """The client's process lives. Answers the run: CANCELLING tells the client to stop, a finished
        run (failed by the monitor after a long silence) tells it to stop sending."""
        if summary is not None:
            _checked_object(summary, "summary")
        async with self.uow() as uow:
            run = await self._external(uow, actor, run_id)
            if run.status.terminal:
                return run
            run.heartbeat_at = utcnow()
            changed = summary is not None and summary != run.summary
            if changed:
                run.summary = summary
            await uow.runs.update(run)
            await uow.commit()
        if changed:
            await publish_run(self.bus, run)
        return run

    async def finish(
        self,
        actor: Actor,
        run_id: str,
        status: RunStatus,
        error: str | None = None,
        summary: dict[str, Any] | None = None,
    ) -> Run:
        """End the run as the client says; asked again with the same status it answers the run unchanged
        (a retried call), another ending of a finished run is a CONFLICT."""
        if status not in ENDINGS:
            raise BadInput("an external run ends SUCCEEDED, FAILED or CANCELLED", field="status")
        if summary is not None:
            _checked_object(summary, "summary")
        async with self.uow() as uow:
            run = await self._external(uow, actor, run_id)
            if run.status.terminal:
                if run.status is status or run.status is RunStatus.CANCELLED:
                    return run
                raise Conflict(f"run {run_id} already ended {run.status.value}", status=run.status.value)
            now = utcnow()
            target = RunStatus.CANCELLED if run.status is RunStatus.CANCELLING else status
            if target is RunStatus.CANCELLED and run.status is RunStatus.RUNNING:
                run.transition(RunStatus.CANCELLING, now)
            run.transition(target, now)
            run.error = error[-MAX_ERROR:] if error else None
            if summary is not None:
                run.summary = summary
            await uow.runs.update(run)
            await uow.commit()
        await publish_run(self.bus, run)
        return run

    async def log_columns(
        self, actor: Actor, run_id: str, columns: Sequence[tuple[str, Any, Any, Any]]
    ) -> tuple[int, int | None]:
        """Store (key, steps, values, timestamps) columns of a run as one batch, validated and stored
        like every batch (``MetricService.record``), never as one object a point. Any run of the
        caller's projects takes them while it is not finished. Answers (points stored, the batch's seq)."""
        async with self.uow() as uow:
            run = await uow.runs.get(run_id)
        if run is None or not actor.can_see(run.project_id):
            raise NotFound.of("Run", run_id)
        actor.require(run.project_id, Role.MEMBER, "Run", run_id)
        if run.status.terminal:
            raise Conflict(f"run {run_id} ended {run.status.value}: it takes no more metrics")
        batch = await self.metrics.record(run_id, [Series.of(*c) for c in columns])
        return (len(batch), batch.seq) if batch is not None else (0, None)

    @staticmethod
    async def _external(uow: UnitOfWork, actor: Actor, run_id: str) -> Run:
        run = await uow.runs.get(run_id, for_update=True)
        if run is None or not actor.can_see(run.project_id):
            raise NotFound.of("Run", run_id)
        actor.require(run.project_id, Role.MEMBER, "Run", run_id)
        if not run.external:
            raise BadInput(f"run {run_id} is run by an executor, not by a tracking client", field="id")
        return run
