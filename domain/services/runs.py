"""Starting, cancelling and reading runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ptw.domain.clock import new_id, utcnow
from ptw.domain.errors import BadInput, Conflict, NotFound
from ptw.domain.events import RunChanged, project_topic, run_topic
from ptw.domain.ports import (
    EventBus,
    JobQueue,
    Page,
    PageRequest,
    ParamsValidator,
    UnitOfWork,
    UnitOfWorkFactory,
)
from ptw.domain.quotas import Quotas
from ptw.domain.run_filters import (
    MAX_METRIC_CONDITIONS,
    checked_condition,
    checked_metric_key,
    checked_param_filters,
)
from ptw.domain.run_labels import MIN_SHORT_ID, checked_name, checked_notes, checked_tags, is_short_id
from ptw.domain.run_story import RunAttempt, RunLogLine
from ptw.domain.runs import Checkpoint, MetricCondition, Run, RunJob, RunQuery, RunStatus
from ptw.domain.tenancy import Actor, Role
from ptw.domain.workflows import Workflow

MAX_IDEMPOTENCY_KEY = 200


async def publish_run(bus: EventBus, run: Run) -> None:
    await bus.publish([run_topic(run.id), project_topic(run.project_id)], RunChanged(run))


def job_for(
    run: Run, workflow: Workflow, checkpoint: Checkpoint | None, objective: str | None = None
) -> RunJob:
    return RunJob(
        run_id=run.id,
        project_id=run.project_id,
        attempt=run.attempt,
        entrypoint=workflow.entrypoint,
        params=run.params,
        resource_class=run.resource_class,
        timeout_seconds=workflow.resources.timeout_seconds,
        checkpoint_uri=checkpoint.uri if checkpoint else None,
        objective=objective,
        resources=workflow.resources,
    )


@dataclass
class RunService:
    uow: UnitOfWorkFactory
    bus: EventBus
    queue: JobQueue
    validator: ParamsValidator
    quotas: Quotas = field(default_factory=Quotas)

    async def start_run(
        self,
        actor: Actor,
        workflow_id: str,
        project_id: str | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        optimization_id: str | None = None,
        name: str | None = None,
        tags: Sequence[str] = (),
    ) -> Run:
        project_id = actor.default_project(project_id)
        actor.require(project_id, Role.MEMBER)
        if params is not None and not isinstance(params, dict):
            raise BadInput("params must be a JSON object", field="params")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise BadInput(
                f"idempotencyKey must be 1-{MAX_IDEMPOTENCY_KEY} characters", field="idempotencyKey"
            )
        async with self.uow() as uow:
            workflow = await uow.workflows.get(workflow_id)
            if workflow is None or workflow.project_id not in (None, project_id):
                raise NotFound.of("Workflow", workflow_id)
            if workflow.tracked_only:
                raise BadInput(
                    f"runs of {workflow.name!r} are created by ptw.init() in the training script's own "
                    "process (startExternalRun), never started on an executor",
                    field="workflowId",
                )
            if idempotency_key:
                earlier = await uow.runs.get_by_idempotency_key(project_id, idempotency_key)
                if earlier is not None:
                    return earlier
            if optimization_id is None:  # trials are bounded by their optimization's quota and maxParallel
                self.quotas.check(
                    "queued runs",
                    await uow.runs.count_with_status(project_id, [RunStatus.QUEUED]),
                    self.quotas.queued_runs(await uow.projects.get_quota(project_id)),
                )
            run = Run(
                id=new_id(),
                project_id=project_id,
                workflow_id=workflow.id,
                params=self._params(workflow, params or {}),
                created_at=utcnow(),
                resource_class=workflow.resources.resource_class,
                idempotency_key=idempotency_key,
                optimization_id=optimization_id,
                name=checked_name(name) if name is not None else "",
                tags=checked_tags(tags),
            )
            run.updated_at = run.created_at
            await uow.runs.add(run)
            await uow.commit()
        # The run is durable before it is queued: a lost enqueue is repaired by reconciliation.
        await self.queue.enqueue(job_for(run, workflow, None))
        await publish_run(self.bus, run)
        return run

    async def cancel_run(self, actor: Actor, run_id: str) -> Run:
        async with self.uow() as uow:
            run = await self._visible(uow, actor, run_id, for_update=True)
            actor.require(run.project_id, Role.MEMBER, "Run", run_id)
            if run.status.terminal:
                raise Conflict(
                    f"run {run_id} already ended {run.status.value}: there is nothing to cancel",
                    status=run.status.value,
                )
            if run.status is RunStatus.CANCELLING:
                return run
            # A queued run has no executor to tell; a started one is stopped by its supervisor.
            target = RunStatus.CANCELLED if run.status is RunStatus.QUEUED else RunStatus.CANCELLING
            run.transition(target, utcnow())
            await uow.runs.update(run)
            await uow.commit()
        await publish_run(self.bus, run)
        return run

    async def update_run(
        self,
        actor: Actor,
        run_id: str,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
    ) -> Run:
        """Rename, retag or annotate a run in any state; ``None`` leaves a field as it is, empty notes
        clear them."""
        labels = (
            checked_name(name) if name is not None else None,
            checked_tags(tags) if tags is not None else None,
            checked_notes(notes) if notes is not None else None,
        )
        async with self.uow() as uow:
            run = await self._visible(uow, actor, run_id, for_update=True)
            actor.require(run.project_id, Role.MEMBER, "Run", run_id)
            new_name, new_tags, new_notes = labels
            run.name = new_name if new_name is not None else run.name
            run.tags = new_tags if new_tags is not None else run.tags
            run.notes = new_notes if notes is not None else run.notes
            run.updated_at = utcnow()
            await uow.runs.update(run)
            await uow.commit()
        await publish_run(self.bus, run)
        return run

    async def resolve_id(self, actor: Actor, ref: str) -> str:
        """The run id a short id (the start of the uuid, as the UI and CLI print it) names among the
        caller's projects; a full uuid is answered as it is."""
        if len(ref) == 36 or not is_short_id(ref):
            return ref
        if len(ref) < MIN_SHORT_ID:
            raise BadInput(f"a short run id has at least {MIN_SHORT_ID} characters", field="id")
        async with self.uow() as uow:
            found = await uow.runs.ids_with_prefix(tuple(actor.project_ids), ref, limit=2)
        if not found:
            raise NotFound.of("Run", ref)
        if len(found) > 1:
            raise BadInput(f"run id {ref!r} is ambiguous: give more of it", field="id")
        return found[0]

    async def get_run(self, actor: Actor, run_id: str) -> Run:
        async with self.uow() as uow:
            return await self._visible(uow, actor, run_id)

    async def get_many(self, actor: Actor, run_ids: Sequence[str]) -> list[Run | None]:
        async with self.uow() as uow:
            found = {r.id: r for r in await uow.runs.get_many(run_ids)}
        return [r if r is not None and actor.can_see(r.project_id) else None for r in map(found.get, run_ids)]

    async def list_runs(
        self,
        actor: Actor,
        page: PageRequest,
        project_id: str | None = None,
        workflow_id: str | None = None,
        statuses: Sequence[RunStatus] = (),
        optimization_id: str | None = None,
        newest_first: bool = True,
        tags: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[MetricCondition] = (),
        order_metric: str | None = None,
    ) -> Page[Run]:
        """Runs of the caller's projects that carry every tag, have each param as given and meet every
        metric condition (its latest value); newest first, or by ``order_metric``'s latest value."""
        if project_id is not None:
            actor.require(project_id, Role.VIEWER)
        if len(metrics) > MAX_METRIC_CONDITIONS:
            raise BadInput(f"filter.metrics: at most {MAX_METRIC_CONDITIONS} conditions", field="metrics")
        query = RunQuery(
            project_ids=(project_id,) if project_id else tuple(actor.project_ids),
            workflow_id=workflow_id,
            statuses=tuple(statuses),
            optimization_id=optimization_id,
            newest_first=newest_first,
            tags=tuple(checked_tags(tags)) if tags else (),
            params=checked_param_filters(params or {}),
            metrics=tuple(checked_condition(c) for c in metrics),
            order_metric=checked_metric_key(order_metric, "orderMetric")
            if order_metric is not None
            else None,
        )
        async with self.uow() as uow:
            return await uow.runs.find(query, page)

    async def logs(self, actor: Actor, run_id: str, after_seq: int = 0, first: int = 100) -> list[RunLogLine]:
        """Stored output lines of the run after ``after_seq``, oldest first."""
        async with self.uow() as uow:
            await self._visible(uow, actor, run_id)
            return await uow.run_logs.page(run_id, after_seq, first)

    async def attempts(self, actor: Actor, run_ids: Sequence[str]) -> dict[str, list[RunAttempt]]:
        """The attempts of each of the runs the actor may see, in order."""
        async with self.uow() as uow:
            visible = [r.id for r in await uow.runs.get_many(run_ids) if actor.can_see(r.project_id)]
            return await uow.attempts.for_runs(visible)

    async def checkpoints(self, actor: Actor, run_id: str) -> list[Checkpoint]:
        async with self.uow() as uow:
            await self._visible(uow, actor, run_id)
            return await uow.checkpoints.for_run(run_id)

    def _params(self, workflow: Workflow, params: dict[str, Any]) -> dict[str, Any]:
        merged = {**workflow.defaults, **params}
        errors = self.validator.errors(workflow.params_schema, merged)
        if errors:
            path, message = errors[0]
            raise BadInput(f"params{path}: {message}", field="params", path=f"params{path}")
        return merged

    @staticmethod
    async def _visible(uow: UnitOfWork, actor: Actor, run_id: str, for_update: bool = False) -> Run:
        run = await uow.runs.get(run_id, for_update=for_update)
        if run is None or not actor.can_see(run.project_id):
            raise NotFound.of("Run", run_id)
        return run
