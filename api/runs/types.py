"""GraphQL types of runs: a run, its checkpoints, the run filters and the events of a run."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from ptw.api.context import Info
from ptw.api.ids import decode_int_cursor, encode_id
from ptw.api.metrics.types import STEP_CURSOR, MetricPoint, MetricSeries
from ptw.api.node import Node, from_entity
from ptw.api.projects.types import Project
from ptw.api.runs.artifacts import Artifact, run_artifacts
from ptw.api.runs.story import RunAttempt, RunLogConnection, log_page, log_request
from ptw.api.workflows.types import Workflow
from ptw.domain import run_story, runs
from ptw.domain.artifacts import KIND_CHECKPOINT
from ptw.domain.errors import BadInput, NotFound
from ptw.domain.events import RunLogged
from ptw.domain.run_labels import short_id
from ptw.domain.series import MAX_WHOLE_SERIES

if TYPE_CHECKING:
    from ptw.api.optimizations.types import OptimizationResult

DEFAULT_SERIES_POINTS = 500
MAX_SERIES_POINTS = 100_000


RunStatus = strawberry.enum(runs.RunStatus)


@strawberry.enum
class RunOrder(enum.Enum):
    CREATED_AT_DESC = "CREATED_AT_DESC"
    CREATED_AT_ASC = "CREATED_AT_ASC"
    METRIC_DESC = strawberry.enum_value(
        "METRIC_DESC", description="By orderMetric's latest value, highest first."
    )
    METRIC_ASC = strawberry.enum_value(
        "METRIC_ASC", description="By orderMetric's latest value, lowest first."
    )


@strawberry.enum
class Comparison(enum.Enum):
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"


@strawberry.input(description="A run's latest value of a metric against a threshold.")
class MetricConditionInput:
    key: str
    op: Comparison
    value: float

    def to_domain(self) -> runs.MetricCondition:
        return runs.MetricCondition(self.key, self.op.value, self.value)


@strawberry.type
class Checkpoint:
    id: strawberry.ID
    attempt: int
    step: int | None
    uri: str
    size_bytes: int
    created_at: datetime

    @classmethod
    def from_domain(cls, checkpoint: runs.Checkpoint) -> Checkpoint:
        return from_entity(cls, checkpoint)


@strawberry.type(description="One execution of a workflow with its params; retried attempts keep the run.")
class Run(Node):
    status: RunStatus
    params: dict[str, Any] = strawberry.field(graphql_type=JSON)
    attempt: int
    executor: str | None
    device: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None
    error: str | None
    summary: dict[str, Any] | None = strawberry.field(graphql_type=JSON | None)
    metric_keys: list[str]
    idempotency_key: str | None
    name: str
    tags: list[str]
    notes: str | None
    external: bool = strawberry.field(description="Tracked by ptw.init() in a process of the user's.")
    waiting: str | None = strawberry.field(
        description="Why a QUEUED run has not started yet (its project at its running-runs quota); null "
        "otherwise."
    )
    short_id: str = strawberry.field(
        description="The start of the run's uuid, as the web UI and the CLI print it; accepted as its id."
    )
    model: strawberry.Private[runs.Run]

    @classmethod
    def from_domain(cls, run: runs.Run) -> Run:
        return cls.of(run, metric_keys=sorted(run.metric_keys), short_id=short_id(run.id))

    @strawberry.field
    async def workflow(self, info: Info) -> Workflow:
        return await Workflow.load(info, self.model.workflow_id)

    @strawberry.field
    async def project(self, info: Info) -> Project:
        project = await info.context.loaders.project.load(self.model.project_id)
        if project is None:
            raise NotFound.of("Project", encode_id("Project", self.model.project_id))
        return Project.from_domain(project, info.context.actor.roles[project.id])

    @strawberry.field(description="The point of highest step of each key.")
    async def latest_metrics(self, info: Info) -> list[MetricPoint]:
        points = await info.context.loaders.latest_metrics.load(self.model.id)
        return [MetricPoint.from_domain(p) for p in sorted(points, key=lambda p: p.key)]

    @strawberry.field(
        description="One key's points in step order, downsampled (extremes kept) only when total > "
        f"maxPoints; maxPoints null: the whole series (at most {MAX_WHOLE_SERIES:,} points, charged as "
        "that many)."
    )
    async def metrics(
        self, info: Info, key: str, max_points: int | None = DEFAULT_SERIES_POINTS, after: str | None = None
    ) -> MetricSeries:
        if max_points is not None and max_points > MAX_SERIES_POINTS:
            raise BadInput(f"maxPoints must be at most {MAX_SERIES_POINTS}", field="maxPoints")
        after_step = decode_int_cursor(after, STEP_CURSOR) if after else None
        series = await info.context.services.metrics.series(
            info.context.actor, self.model.id, key, max_points, after_step
        )
        return MetricSeries.from_domain(series, after_step)

    @strawberry.field(
        description="Stored output lines (stdout, stderr, system), oldest first; kept after the run."
    )
    async def logs(self, info: Info, first: int | None = None, after: str | None = None) -> RunLogConnection:
        after_seq, size = log_request(first, after)
        lines = await info.context.services.runs.logs(info.context.actor, self.model.id, after_seq, size + 1)
        return log_page(lines, size)

    @strawberry.field(description="Every attempt at the run, first to last, with how each ended and why.")
    async def attempts(self, info: Info) -> list[RunAttempt]:
        return [RunAttempt.from_domain(a) for a in await info.context.loaders.attempts.load(self.model.id)]

    @strawberry.field
    async def checkpoints(self, info: Info) -> list[Checkpoint]:
        found = await info.context.services.runs.checkpoints(info.context.actor, self.model.id)
        return [Checkpoint.from_domain(c) for c in found if c.kind == KIND_CHECKPOINT]

    @strawberry.field(description="Its checkpoints (those its workflow's retention keeps) and saved files.")
    async def artifacts(self, info: Info) -> list[Artifact]:
        return await run_artifacts(info, self.model.id)

    @strawberry.field(description="The optimization result this run produced, when it is a trial.")
    async def optimization_result(
        self, info: Info
    ) -> Annotated[OptimizationResult, strawberry.lazy("ptw.api.optimizations.types")] | None:
        from ptw.api.optimizations.types import OptimizationResult

        found = await info.context.services.optimizations.result_of_run(info.context.actor, self.model.id)
        return OptimizationResult.from_domain(found) if found else None


@strawberry.input(description="Every condition given must hold.")
class RunFilter:
    project_id: strawberry.ID | None = None
    workflow_id: strawberry.ID | None = None
    status: list[RunStatus] | None = None
    optimization_id: strawberry.ID | None = None
    tags: list[str] | None = strawberry.field(default=None, description="Runs carrying every one of them.")
    params: Any = strawberry.field(
        default=None,
        graphql_type=JSON | None,
        description='Params the run has with these values, e.g. {"lr": 0.01, "optimizer": "adam"}.',
    )
    metrics: list[MetricConditionInput] | None = strawberry.field(
        default=None, description="Conditions on the runs' latest metric values."
    )


@strawberry.input
class StartRunInput:
    workflow_id: strawberry.ID
    project_id: strawberry.ID | None = strawberry.field(
        default=None, description="Default: the key's only project."
    )
    params: Any = strawberry.field(
        default=None, graphql_type=JSON | None, description="Merged over the workflow's defaults."
    )
    idempotency_key: str | None = strawberry.field(
        default=None, description="Starting again with the same key answers the same run."
    )
    name: str | None = strawberry.field(default=None, description="Default: a readable name from its id.")
    tags: list[str] | None = None


@strawberry.input(description="What to change of a run; a field left out is kept, empty notes clear them.")
class UpdateRunInput:
    name: str | None = None
    tags: list[str] | None = None
    notes: str | None = None


@strawberry.enum
class RunEventKind(enum.Enum):
    STATUS = "STATUS"
    LOG = "LOG"


@strawberry.type(description="A status change (kind STATUS) or a line of output (kind LOG) of a run.")
class RunEvent:
    kind: RunEventKind
    status: RunStatus | None
    message: str | None
    stream: str | None = strawberry.field(description="stdout, stderr or system, for LOG events.")
    at: datetime
    run_id: strawberry.ID
    source_run_id: strawberry.Private[str]
    snapshot: strawberry.Private[runs.Run | None] = None

    @strawberry.field(description="The run, as of this event for STATUS events.")
    async def run(self, info: Info) -> Run:
        if self.snapshot is not None:
            return Run.from_domain(self.snapshot)
        run = await info.context.loaders.run.load(self.source_run_id)
        if run is None:
            raise NotFound.of("Run", self.run_id)
        return Run.from_domain(run)

    @classmethod
    def status_of(cls, run: runs.Run) -> RunEvent:
        return cls(
            kind=RunEventKind.STATUS,
            status=run.status,
            message=run.error,
            stream=None,
            at=run.updated_at or run.created_at,
            run_id=strawberry.ID(encode_id("Run", run.id)),
            source_run_id=run.id,
            snapshot=run,
        )

    @classmethod
    def stored_log_of(cls, line: run_story.RunLogLine, project_id: str) -> RunEvent:
        return cls.log_of(RunLogged(line.run_id, project_id, line.line, line.stream, line.at, line.seq))

    @classmethod
    def log_of(cls, event: RunLogged) -> RunEvent:
        return cls(
            kind=RunEventKind.LOG,
            status=None,
            message=event.message,
            stream=event.stream,
            at=event.at,
            run_id=strawberry.ID(encode_id("Run", event.run_id)),
            source_run_id=event.run_id,
        )
