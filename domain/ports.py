"""Ports: what the domain needs from the outside world, as Protocols that ``infra`` implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, Generic, Protocol, Self, TypeVar

from ptw.domain.artifacts import Retention
from ptw.domain.events import Event
from ptw.domain.executors import AutoscalerState, ExecutorState
from ptw.domain.metrics import MetricBatch, MetricPoint, Series
from ptw.domain.optimizations import Optimization, OptimizationResult, OptimizationStatus
from ptw.domain.quotas import ProjectQuota
from ptw.domain.run_story import RunAttempt, RunLogLine
from ptw.domain.runs import Checkpoint, Run, RunJob, RunQuery, RunStatus
from ptw.domain.series import SeriesRead
from ptw.domain.tenancy import ApiKey, Membership, Project, Role
from ptw.domain.workflows import Workflow

T = TypeVar("T")
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class PageRequest:
    """Keyset pagination: ``after`` is the id of the last item of the previous page."""

    first: int = 50
    after: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool


class ProjectRepository(Protocol):
    async def add(self, project: Project) -> None: ...
    async def get(self, project_id: str) -> Project | None: ...
    async def get_by_name(self, name: str) -> Project | None: ...
    async def get_many(self, project_ids: Sequence[str]) -> list[Project]: ...
    async def get_quota(self, project_id: str) -> ProjectQuota | None: ...
    async def set_quota(self, quota: ProjectQuota) -> None: ...
    async def lock(self, project_id: str) -> None:
        """Hold the project until the transaction ends, so that two executors' claims of its runs count
        its running runs one after the other (a row lock on PostgreSQL, the write lock on SQLite)."""
        ...


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKey) -> None: ...
    async def get(self, key_id: str) -> ApiKey | None: ...
    async def get_for_auth(self, prefix: str) -> tuple[ApiKey, list[Membership]] | None:
        """The key of that prefix with its memberships, in one round trip (every request needs both)."""
        ...

    async def update(self, key: ApiKey) -> None: ...
    async def add_membership(self, membership: Membership) -> None: ...
    async def memberships(self, key_id: str) -> list[Membership]: ...
    async def in_project(self, project_id: str) -> list[tuple[ApiKey, Role]]:
        """The keys holding a role in the project (revoked ones too), oldest first, with that role."""
        ...


class WorkflowRepository(Protocol):
    async def add(self, workflow: Workflow) -> None: ...
    async def update(self, workflow: Workflow) -> None: ...
    async def get(self, workflow_id: str) -> Workflow | None: ...
    async def get_many(self, workflow_ids: Sequence[str]) -> list[Workflow]: ...
    async def get_by_name(self, name: str, project_id: str | None) -> Workflow | None:
        """The workflow of that name in the project (``None``: the built-in of that name)."""
        ...

    async def find(self, project_ids: Sequence[str], page: PageRequest) -> Page[Workflow]:
        """Built-ins and the given projects' workflows, ordered by name then id."""
        ...


class RunRepository(Protocol):
    async def add(self, run: Run) -> None: ...
    async def update(self, run: Run) -> None: ...
    async def delete(self, run_id: str) -> None:
        """The run and everything of it (metrics, artifacts' rows, output, attempts)."""
        ...

    async def get(self, run_id: str, *, for_update: bool = False) -> Run | None: ...
    async def get_many(self, run_ids: Sequence[str]) -> list[Run]: ...
    async def get_by_idempotency_key(self, project_id: str, key: str) -> Run | None: ...
    async def ids_with_prefix(self, project_ids: Sequence[str], prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` ids of runs of those projects that start with ``prefix`` (a short id)."""
        ...

    async def find(self, query: RunQuery, page: PageRequest) -> Page[Run]:
        """Ordered by (created_at, id), newest first unless ``query.newest_first`` is False."""
        ...

    async def with_status(self, statuses: Sequence[RunStatus]) -> list[Run]: ...
    async def count_with_status(
        self, project_id: str, statuses: Sequence[RunStatus], *, external: bool | None = None
    ) -> int:
        """``external``: only the runs tracked by ``ptw.init`` (True) or only executors' (False)."""
        ...

    async def next_metric_seq(self, run_id: str, new_keys: Sequence[str]) -> int:
        """Increment and return the run's metric batch sequence, adding ``new_keys`` to its metric keys.
        Holds the run's row lock until the transaction ends, so batches of one run are ordered."""
        ...

    async def add_metric_keys(self, run_id: str, keys: Sequence[str]) -> None:
        """Merge ``keys`` into the run's metric keys (production's ingester: it takes no ``seq``)."""
        ...


class MetricRepository(Protocol):
    async def add_batch(self, batch: MetricBatch) -> None:
        """Bulk upsert: one point per (run, key, step); a repeated one takes the value of the higher seq."""
        ...

    async def add_batches(self, batches: Sequence[MetricBatch]) -> None:
        """``add_batch`` of several batches (of any runs) in one bulk write. The batches are ``checked``:
        one point per (key, step) within each."""
        ...

    async def read(
        self, run_id: str, key: str, max_points: int | None = None, after_step: int | None = None
    ) -> SeriesRead:
        """Points of one key after ``after_step`` in step order: all when they fit in ``max_points`` (or
        it is None), else downsampled keeping extremes; the cost is the answer's, not the series'."""
        ...

    async def count(self, run_id: str, key: str, after_step: int | None = None) -> int: ...
    async def latest(self, run_ids: Sequence[str]) -> dict[str, list[MetricPoint]]:
        """For each run, the point of highest step of each of its keys, in one round trip."""
        ...

    async def batches_after(
        self, run_id: str, after_seq: int, keys: Sequence[str] | None = None, before_seq: int | None = None
    ) -> list[MetricBatch]:
        """Stored points with a seq above ``after_seq`` (and below ``before_seq``), batched in seq order."""
        ...


class CheckpointRepository(Protocol):
    """Artifacts of runs: checkpoints and named files (``Checkpoint.kind``)."""

    async def add(self, checkpoint: Checkpoint) -> None: ...
    async def get(self, checkpoint_id: str) -> Checkpoint | None: ...
    async def for_run(self, run_id: str) -> list[Checkpoint]:
        """Every artifact of the run, oldest first."""
        ...

    async def latest(self, run_id: str) -> Checkpoint | None:
        """The newest checkpoint (never a file): where a new attempt resumes."""
        ...

    async def delete(self, checkpoint_ids: Sequence[str]) -> None: ...


class RetentionRepository(Protocol):
    async def get(self, workflow_id: str) -> Retention | None: ...
    async def put(self, workflow_id: str, retention: Retention) -> None: ...


class ArtifactFiles(Protocol):
    """The artifact store as the control plane sees it: it reads and deletes what executors saved."""

    def open(self, uri: str) -> AbstractContextManager[IO[bytes]]:
        """The object's bytes (blocking: call it from a thread); FileNotFoundError when it is gone."""
        ...

    async def delete(self, uris: Sequence[str]) -> None:
        """Delete the objects; one that is already gone is no error."""
        ...


class OptimizationRepository(Protocol):
    async def add(self, optimization: Optimization) -> None: ...
    async def update(self, optimization: Optimization) -> None: ...
    async def get(self, optimization_id: str, *, for_update: bool = False) -> Optimization | None: ...
    async def find(self, project_ids: Sequence[str], page: PageRequest) -> Page[Optimization]: ...
    async def with_status(self, statuses: Sequence[OptimizationStatus]) -> list[Optimization]: ...
    async def count_with_status(self, project_id: str, statuses: Sequence[OptimizationStatus]) -> int: ...
    async def add_result(self, result: OptimizationResult) -> None:
        """A second result of the same (optimization, number) is a Conflict: trials are never doubled."""
        ...

    async def update_result(self, result: OptimizationResult) -> None: ...
    async def results(self, optimization_id: str, page: PageRequest) -> Page[OptimizationResult]: ...
    async def all_results(self, optimization_id: str) -> list[OptimizationResult]:
        """Every result of the optimization, by trial number (then creation)."""
        ...

    async def result_for_run(self, run_id: str, *, for_update: bool = False) -> OptimizationResult | None: ...
    async def get_result(self, result_id: str) -> OptimizationResult | None: ...


class RunLogRepository(Protocol):
    async def add(self, lines: Sequence[RunLogLine]) -> None: ...
    async def last_seq(self, run_id: str) -> int:
        """The highest seq stored for the run, 0 when none."""
        ...

    async def page(self, run_id: str, after_seq: int, first: int) -> list[RunLogLine]:
        """Lines of a seq above ``after_seq``, in seq order, at most ``first``."""
        ...


class AttemptRepository(Protocol):
    async def put(self, attempt: RunAttempt) -> None:
        """Insert the attempt, or replace the stored one of the same (run, attempt)."""
        ...

    async def end(self, attempt: RunAttempt) -> None:
        """Store an ended attempt's end (outcome, reason, time) unless the stored one already ended: its
        first end is kept. Inserted whole when none is stored. One statement, no read first."""
        ...

    async def set_device(self, run_id: str, attempt: int, device: str | None) -> None:
        """The device the stored attempt runs on (no stored attempt: nothing)."""
        ...

    async def get(self, run_id: str, attempt: int) -> RunAttempt | None: ...
    async def for_runs(self, run_ids: Sequence[str]) -> dict[str, list[RunAttempt]]:
        """Each run's attempts in order; a run without any is absent."""
        ...


class UnitOfWork(Protocol):
    """One transaction over all repositories; leaving without ``commit`` rolls back."""

    # Read-only properties, so an adapter may narrow them (a cached repository, a SQL one...).
    @property
    def projects(self) -> ProjectRepository: ...
    @property
    def api_keys(self) -> ApiKeyRepository: ...
    @property
    def workflows(self) -> WorkflowRepository: ...
    @property
    def runs(self) -> RunRepository: ...
    @property
    def metrics(self) -> MetricRepository: ...
    @property
    def checkpoints(self) -> CheckpointRepository: ...
    @property
    def optimizations(self) -> OptimizationRepository: ...
    @property
    def run_logs(self) -> RunLogRepository: ...
    @property
    def attempts(self) -> AttemptRepository: ...
    @property
    def retention(self) -> RetentionRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


class Subscription(Protocol):
    """Events of the subscribed topics, buffered from the moment of subscribing."""

    def __aiter__(self) -> AsyncIterator[Event]: ...


class EventBus(Protocol):
    async def publish(self, topics: Sequence[str], event: Event) -> None: ...
    def subscribe(self, topics: Sequence[str]) -> AbstractAsyncContextManager[Subscription]: ...


@dataclass(frozen=True)
class LogRead:
    """What one read of a metric log gives: the batches, and below which seq the log was trimmed.

    Batches below ``trimmed_below`` and above the reader's cursor may be missing from ``batches``:
    they were stored before being trimmed, so the reader takes them from storage."""

    batches: list[MetricBatch]
    trimmed_below: int


class MetricLog(Protocol):
    """Production's live path of metric batches: an append-only log per run that subscribers read after
    their cursor and an ingester moves into storage. A batch's ``seq`` is its position in the log: it
    grows within a run but, unlike embedded mode's, is not contiguous."""

    async def append(self, run_id: str, series: Sequence[Series]) -> int:
        """Append one batch (its series ``checked``); returns its seq."""
        ...

    async def read_after(
        self, run_id: str, after_seq: int, block_ms: int | None = None, count: int = 100
    ) -> LogRead:
        """Up to ``count`` batches of a seq above ``after_seq``, waiting up to ``block_ms`` for one to come
        (``None``: not waiting)."""
        ...

    async def trim(self, run_id: str, upto_seq: int) -> None:
        """Forget the batches of a seq below ``upto_seq`` (they are stored)."""
        ...


class JobQueue(Protocol):
    async def enqueue(self, job: RunJob) -> None:
        """Idempotent per (run, attempt): enqueuing the same attempt twice queues it once."""
        ...

    async def depth(self) -> dict[str, int]:
        """Jobs waiting, per resource class."""
        ...

    async def in_progress(self) -> dict[str, int]:
        """Jobs an executor took and has not finished yet, per resource class."""
        ...


class ParamsValidator(Protocol):
    def errors(self, schema: dict[str, Any], params: dict[str, Any]) -> list[tuple[str, str]]:
        """(JSON path, message) for each way ``params`` breaks ``schema``; empty when valid."""
        ...

    def check_schema(self, schema: dict[str, Any]) -> list[str]:
        """Messages for a malformed JSON schema; empty when it is a valid one."""
        ...


class ExecutorRegistry(Protocol):
    """Where executors announce themselves (heartbeats) and the control plane reads the pool."""

    async def announce(self, state: ExecutorState) -> None: ...
    async def leave(self, executor_id: str) -> None: ...
    async def alive(self) -> list[ExecutorState]: ...
    async def publish_autoscaler(self, state: AutoscalerState, ttl: float) -> None:
        """An autoscaler's latest decision; it is forgotten ``ttl`` seconds later unless published again."""
        ...

    async def retire_autoscaler(self, autoscaler_id: str) -> None: ...
    async def autoscalers(self) -> list[AutoscalerState]:
        """The decisions of the autoscalers that published within their ttl."""
        ...


@dataclass(frozen=True)
class TrialSuggestion:
    """What a search strategy proposes for the next trial."""

    config: dict[str, Any]
    search_state: dict[str, Any]


@dataclass(frozen=True)
class PruneAdvice:
    prune: bool
    search_state: dict[str, Any]  # the trial's strategy state after deciding (pruners may keep some)


class SearchStrategy(Protocol):
    """Samplers and pruners of a hyperparameter search. Stateless between calls: every call is given the
    search's trials as stored, so the search state lives in the database and any process may decide."""

    def suggest(self, optimization: Optimization, trials: Sequence[OptimizationResult]) -> TrialSuggestion:
        """The config of trial number ``len(trials)``, given every trial so far in number order."""
        ...

    def should_prune(
        self, optimization: Optimization, trials: Sequence[OptimizationResult], trial: OptimizationResult
    ) -> PruneAdvice:
        """Whether ``trial`` (one of ``trials``, its latest report included) should stop now."""
        ...


class ParameterImportance(Protocol):
    """How much each parameter of a search explains its objective, from the trials so far."""

    def importance(
        self, optimization: Optimization, trials: Sequence[OptimizationResult]
    ) -> dict[str, float]:
        """Each parameter of the space over the complete trials, highest first, summing to 1; empty while
        too few trials are complete to say."""
        ...


class OptimizationLease(Protocol):
    """Who drives an optimization now: with several API replicas, each search is advanced by one."""

    def hold(self, optimization_id: str) -> AbstractAsyncContextManager[bool]:
        """Inside, True when this process holds the optimization (until leaving); False when another does."""
        ...
