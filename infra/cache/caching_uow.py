"""Cache-aside over the SQL repositories: workflows, finished runs and projects read through Redis, and a
unit of work that invalidates, at commit, every cached object it wrote.

Only what the domain reads by id (or a workflow by name) is cached; listings and everything else go to the
database. A run is cached only once it is terminal (a live one changes with every status and metric key),
and ``get(for_update=True)`` always reads the database, since it is the start of a write. A cached value
is the database row as it was: the services' visibility checks (``actor.can_see``) run on it exactly as on
a row just read, and a value whose project is not the one its key names is refused as a miss.

Inside one unit of work, what it wrote is read from the database (its own uncommitted rows) and never
filled into the cache; at commit its keys are tombstoned before the commit and again after it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from redis.asyncio import Redis

from ptw.domain.ports import (
    ApiKeyRepository,
    AttemptRepository,
    CheckpointRepository,
    MetricRepository,
    OptimizationRepository,
    Page,
    PageRequest,
    ProjectRepository,
    RetentionRepository,
    RunLogRepository,
    RunRepository,
    UnitOfWork,
    UnitOfWorkFactory,
    WorkflowRepository,
)
from ptw.domain.quotas import ProjectQuota
from ptw.domain.runs import Run, RunQuery, RunStatus
from ptw.domain.tenancy import Project
from ptw.domain.workflows import Workflow
from ptw.infra.cache import codec
from ptw.infra.cache.read_through import Kind, ReadThrough, Writes
from ptw.infra.cache.redis_cache import RedisCache

WORKFLOW, WORKFLOW_NAME, RUN, PROJECT = "workflow", "workflow-name", "run", "project"


class CachedWorkflowRepository:
    def __init__(self, inner: WorkflowRepository, cache: RedisCache, writes: Writes) -> None:
        self.inner, self.cache, self.writes = inner, cache, writes
        kind = Kind(WORKFLOW, codec.workflows.encode, codec.workflows.decode, lambda w: w.project_id)
        self.by_id = ReadThrough(kind, cache, writes)
        self._names: dict[str, str] = {}  # id → name of the workflows read here, to invalidate on rename

    def name_key(self, name: str, project_id: str | None) -> str:
        return self.cache.key(WORKFLOW_NAME, project_id, name)

    async def add(self, workflow: Workflow) -> None:
        await self.inner.add(workflow)
        # Nothing is cached for an id or a name that did not exist: only this unit of work's reads change.
        keys = (self.by_id.key(workflow), self.name_key(workflow.name, workflow.project_id))
        self.writes.wrote(*keys, invalidate=False)

    async def update(self, workflow: Workflow) -> None:
        old_name = self._names.get(workflow.id)
        if old_name is None and (old := await self.inner.get(workflow.id)) is not None:
            old_name = old.name
        await self.inner.update(workflow)
        keys = {self.by_id.key(workflow), self.name_key(workflow.name, workflow.project_id)}
        if old_name is not None:
            keys.add(self.name_key(old_name, workflow.project_id))
        self.writes.wrote(*keys)

    async def get(self, workflow_id: str) -> Workflow | None:
        found = await self.get_many([workflow_id])
        return found[0] if found else None

    async def get_many(self, workflow_ids: Sequence[str]) -> list[Workflow]:
        found = await self.by_id.many(workflow_ids, self.inner.get_many)
        self._names.update((w.id, w.name) for w in found)
        return found

    async def get_by_name(self, name: str, project_id: str | None) -> Workflow | None:
        key = self.name_key(name, project_id)
        if key not in self.writes.written and (text := await self.cache.get(WORKFLOW_NAME, key)):
            try:
                cached: Workflow | None = codec.workflows.decode(text)
            except (ValueError, KeyError, TypeError):
                cached = None
            if cached is not None and (cached.name, cached.project_id) == (name, project_id):
                self._names[cached.id] = cached.name
                return self.by_id.remember(cached)
            self.cache.count_error(WORKFLOW_NAME)
        found = self.by_id.remember(await self.inner.get_by_name(name, project_id))
        if found is not None:
            self._names[found.id] = found.name
            if key not in self.writes.written:
                await self.cache.fill(WORKFLOW_NAME, {key: codec.workflows.encode(found)}, {})
        return found

    async def find(self, project_ids: Sequence[str], page: PageRequest) -> Page[Workflow]:
        return await self.inner.find(project_ids, page)


def _run_project(run: Run) -> str | None:
    return run.project_id


def _finished(run: Run) -> bool:
    return run.status.terminal


class CachedRunRepository:
    def __init__(self, inner: RunRepository, cache: RedisCache, writes: Writes) -> None:
        self.inner, self.cache, self.writes = inner, cache, writes
        kind = Kind(RUN, codec.runs.encode, codec.runs.decode, _run_project, _finished)
        self.by_id = ReadThrough(kind, cache, writes)
        # Runs this unit of work locked while live (a state never cached): none of them has a cached value
        # to go stale, nor can a reader fill its old row meanwhile, so writing them needs no tombstones
        # (two Redis round trips a transaction; an executor writes its run three times per attempt).
        self._locked_live: set[str] = set()

    async def add(self, run: Run) -> None:
        await self.inner.add(run)
        self.writes.wrote(self.by_id.key(run), invalidate=False)  # a new id has nothing cached

    async def update(self, run: Run) -> None:
        await self.inner.update(run)
        self.writes.wrote(self.by_id.key(run), invalidate=run.id not in self._locked_live)

    async def delete(self, run_id: str) -> None:
        run = await self.inner.get(run_id)
        await self.inner.delete(run_id)
        if run is not None:
            self.writes.wrote(self.by_id.key(run))

    async def get(self, run_id: str, *, for_update: bool = False) -> Run | None:
        if for_update:
            run = await self.inner.get(run_id, for_update=True)
            if run is not None and not _finished(run):
                self._locked_live.add(run.id)
            return self.by_id.remember(run)
        found = await self.get_many([run_id])
        return found[0] if found else None

    async def get_many(self, run_ids: Sequence[str]) -> list[Run]:
        return await self.by_id.many(run_ids, self.inner.get_many)

    async def get_by_idempotency_key(self, project_id: str, key: str) -> Run | None:
        return await self.inner.get_by_idempotency_key(project_id, key)

    async def ids_with_prefix(self, project_ids: Sequence[str], prefix: str, limit: int) -> list[str]:
        return await self.inner.ids_with_prefix(project_ids, prefix, limit)

    async def find(self, query: RunQuery, page: PageRequest) -> Page[Run]:
        return await self.inner.find(query, page)

    async def with_status(self, statuses: Sequence[RunStatus]) -> list[Run]:
        return await self.inner.with_status(statuses)

    async def count_with_status(
        self, project_id: str, statuses: Sequence[RunStatus], *, external: bool | None = None
    ) -> int:
        return await self.inner.count_with_status(project_id, statuses, external=external)

    async def next_metric_seq(self, run_id: str, new_keys: Sequence[str]) -> int:
        seq = await self.inner.next_metric_seq(run_id, new_keys)
        await self._wrote_metric_keys(run_id)
        return seq

    async def add_metric_keys(self, run_id: str, keys: Sequence[str]) -> None:
        await self.inner.add_metric_keys(run_id, keys)
        await self._wrote_metric_keys(run_id)

    async def _wrote_metric_keys(self, run_id: str) -> None:
        key = self.cache.known_key(RUN, run_id)
        if key is None:  # a run this process has not seen: its project decides its key
            run = await self.inner.get(run_id)
            key = self.by_id.key(run) if run is not None else None
        if key is not None:
            self.writes.wrote(key, invalidate=run_id not in self._locked_live)


class CachedProjectRepository:
    """Projects are never changed once created: cached by id, and a project's key names itself."""

    def __init__(self, inner: ProjectRepository, cache: RedisCache, writes: Writes) -> None:
        self.inner, self.cache = inner, cache
        kind = Kind(PROJECT, codec.projects.encode, codec.projects.decode, lambda p: p.id)
        self.by_id = ReadThrough(kind, cache, writes)

    async def add(self, project: Project) -> None:
        await self.inner.add(project)

    async def get(self, project_id: str) -> Project | None:
        found = await self.get_many([project_id])
        return found[0] if found else None

    async def get_many(self, project_ids: Sequence[str]) -> list[Project]:
        for project_id in project_ids:
            self.cache.remember(PROJECT, project_id, project_id)
        found = await self.by_id.many(project_ids, self.inner.get_many)
        return sorted(found, key=lambda p: p.name)  # the order the SQL repository answers in

    async def get_by_name(self, name: str) -> Project | None:
        return await self.inner.get_by_name(name)

    async def get_quota(self, project_id: str) -> ProjectQuota | None:
        return await self.inner.get_quota(project_id)  # read at each start, never cached: the operator's

    async def set_quota(self, quota: ProjectQuota) -> None:
        await self.inner.set_quota(quota)

    async def lock(self, project_id: str) -> None:
        await self.inner.lock(project_id)


class CachingUnitOfWork:
    """A unit of work whose workflows, runs and projects read through the cache; the other repositories
    are the inner unit of work's own."""

    projects: ProjectRepository
    api_keys: ApiKeyRepository
    workflows: WorkflowRepository
    runs: RunRepository
    metrics: MetricRepository
    checkpoints: CheckpointRepository
    optimizations: OptimizationRepository
    run_logs: RunLogRepository
    attempts: AttemptRepository
    retention: RetentionRepository

    def __init__(self, inner: UnitOfWork, cache: RedisCache) -> None:
        self.inner, self.cache = inner, cache
        self._writes = Writes()

    async def __aenter__(self) -> Self:
        inner = await self.inner.__aenter__()
        self._writes = Writes()
        self.projects = CachedProjectRepository(inner.projects, self.cache, self._writes)
        self.workflows = CachedWorkflowRepository(inner.workflows, self.cache, self._writes)
        self.runs = CachedRunRepository(inner.runs, self.cache, self._writes)
        self.api_keys = inner.api_keys
        self.metrics = inner.metrics
        self.checkpoints = inner.checkpoints
        self.optimizations = inner.optimizations
        self.run_logs = inner.run_logs
        self.attempts = inner.attempts
        self.retention = inner.retention
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.inner.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        """Tombstones before the commit keep readers from filling the old rows while it runs; after it,
        they keep out a reader that read an old row just before the commit and fills it just after."""
        keys = sorted(self._writes.to_invalidate)
        await self.cache.invalidate(keys)
        await self.inner.commit()
        await self.cache.invalidate(keys)
        self._writes.written.clear()
        self._writes.to_invalidate.clear()


@dataclass(frozen=True)
class CachingUnitOfWorkFactory:
    inner: UnitOfWorkFactory
    cache: RedisCache

    def __call__(self) -> CachingUnitOfWork:
        return CachingUnitOfWork(self.inner(), self.cache)


def caching_uow_factory(
    inner_factory: UnitOfWorkFactory, redis: Redis, prefix: str, *, ttl: float = 300.0
) -> CachingUnitOfWorkFactory:
    """Production's unit of work factory: ``inner_factory``'s, read through Redis under ``prefix``.
    ``.cache.stats`` holds the hit, miss and error counters that ``/metrics`` exports."""
    return CachingUnitOfWorkFactory(inner_factory, RedisCache(redis, prefix, ttl=ttl))
