"""The composition root: turns Settings into wired services for the API, the workers, the CLI and tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ptw.domain.ports import ArtifactFiles, EventBus, ExecutorRegistry, JobQueue, MetricLog, UnitOfWorkFactory
from ptw.domain.quotas import Quotas
from ptw.domain.services import (
    AccessService,
    ExecutionService,
    MetricService,
    OptimizationService,
    PoolService,
    RecoveryService,
    RunService,
    TrackingService,
    WorkflowService,
)
from ptw.domain.services.artifacts import ArtifactService
from ptw.domain.services.optimization_driver import OptimizationDriver
from ptw.domain.services.workflows import EntrypointCheck, WorkflowSpec
from ptw.infra.db.database import Database
from ptw.infra.live.memory_bus import InMemoryEventBus
from ptw.infra.live.memory_registry import InMemoryExecutorRegistry
from ptw.infra.params_validator import JsonSchemaValidator
from ptw.infra.queue.memory_queue import InMemoryJobQueue
from ptw.infra.ratelimit import RateLimiter, auth_failure_limiter_for, rate_limiter_for
from ptw.infra.search import LocalLease, OptunaImportance, OptunaStrategy, PostgresLease
from ptw.infra.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ptw.infra.cache import RedisCache


@dataclass
class Services:
    settings: Settings
    database: Database
    bus: EventBus
    queue: JobQueue
    access: AccessService
    workflows: WorkflowService
    runs: RunService
    metrics: MetricService
    execution: ExecutionService
    optimizations: OptimizationService
    registry: ExecutorRegistry
    pool: PoolService
    recovery: RecoveryService
    tracking: TrackingService
    artifacts: ArtifactService
    # Advances the optimizations; run by `ptw serve` (see ptw/lifecycle.py), set by bootstrap.
    optimization_driver: OptimizationDriver | None = None
    rate_limiter: RateLimiter | None = None  # None: rate limits off (PTW_RATE_LIMIT=0)
    # Failed authentications per client address (PTW_AUTH_FAILURE_RATE); None: not limited.
    auth_failure_limiter: RateLimiter | None = None
    redis: Redis | None = None  # production mode only
    cache: RedisCache | None = None  # production mode only: the read cache of the unit of work
    # Adapters that hold connections or tasks, closed (in reverse order) before the database.
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    @property
    def local_queue(self) -> InMemoryJobQueue:
        """The in-process queue the embedded executor pool takes its jobs from."""
        if not isinstance(self.queue, InMemoryJobQueue):
            raise RuntimeError("local executors take jobs from the in-process queue of embedded mode")
        return self.queue

    def cache_stats(self) -> dict[str, dict[str, int]]:
        """The read cache's hits, misses and errors by kind (for /metrics); empty without a cache."""
        return self.cache.stats.snapshot() if self.cache is not None else {}

    async def metrics_set_aside(self) -> int:
        """How many metric log entries the ingesters set aside, unable to store them (for /metrics)."""
        if self.redis is None:
            return 0  # embedded mode stores at once: a batch it cannot store is refused to its sender
        from ptw.infra.ingest.set_aside import SetAside

        return await SetAside(self.redis, self.settings.redis_prefix).count()

    async def ready(self) -> dict[str, bool]:
        """What /readyz reports: each backing service and whether it answers."""
        checks = {"database": await self.database.ping()}
        if self.redis is not None:
            checks["redis"] = await _redis_answers(self.redis)
        return checks

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            await close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.dispose()


def builtin_specs() -> list[WorkflowSpec]:
    from ptw.executors.workflows import BUILTINS  # data only: importing it does not import torch

    return [
        WorkflowSpec(
            name=b["name"],
            entrypoint=b["entrypoint"],
            params_schema=b["params_schema"],
            defaults=b["defaults"],
            gpus=b.get("gpus"),
            timeout_seconds=b.get("timeout_seconds"),
            processes_per_node=b.get("processes_per_node"),
        )
        for b in BUILTINS
    ]


async def _redis_answers(redis: Redis) -> bool:
    try:
        return bool(await asyncio.wait_for(redis.ping(), 2.0))
    except Exception:
        return False


@dataclass
class _Adapters:
    """The adapters that differ between embedded and production mode."""

    bus: EventBus
    queue: JobQueue
    registry: ExecutorRegistry
    redis: Redis | None = None
    metric_log: MetricLog | None = None  # production: batches go through Redis streams to storage
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)


def _embedded_adapters() -> _Adapters:
    bus = InMemoryEventBus()
    return _Adapters(bus, InMemoryJobQueue(), InMemoryExecutorRegistry(), closers=[bus.close])


def _production_adapters(settings: Settings) -> _Adapters:
    from redis.asyncio import Redis

    from ptw.infra.live.redis_bus import RedisEventBus
    from ptw.infra.live.redis_metric_log import RedisMetricLog
    from ptw.infra.live.redis_registry import RedisExecutorRegistry
    from ptw.infra.live.shared_log_reader import SharedLogReader
    from ptw.infra.queue.arq_queue import ArqJobQueue

    url = settings.resolved_database_url
    if not url.startswith("postgresql"):
        raise ValueError(
            "production mode (PTW_REDIS_URL set) needs PTW_DATABASE_URL=postgresql+asyncpg://..."
        )
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    prefix = settings.redis_prefix
    bus = RedisEventBus(redis, prefix)
    metric_log = SharedLogReader(RedisMetricLog(redis, prefix))
    return _Adapters(
        bus=bus,
        queue=ArqJobQueue(redis, prefix),
        registry=RedisExecutorRegistry(redis, prefix, ttl=3 * settings.executor_heartbeat),
        redis=redis,
        metric_log=metric_log,
        closers=[bus.close, metric_log.close],
    )


def artifact_files(settings: Settings) -> ArtifactFiles:
    """The store executors save artifacts in, as the control plane reads and deletes them."""
    from ptw.executors.artifacts import StoreFiles, store_from_env

    return StoreFiles(lambda: store_from_env(settings.runner_env(), settings.artifacts_dir))


async def bootstrap(settings: Settings | None = None, *, migrate: bool = False) -> Services:
    """Wire the services for ``settings``. ``migrate``: upgrade the schema first (``ptw db upgrade`` and
    the embedded server, which owns its SQLite file); otherwise a schema not at head: ``SchemaNotAtHead``."""
    settings = settings or Settings()
    database = Database(settings.resolved_database_url)
    try:
        await (database.upgrade() if migrate else database.require_head())
    except BaseException:
        await database.dispose()
        raise
    adapters = _embedded_adapters() if settings.embedded else _production_adapters(settings)
    bus, queue, registry = adapters.bus, adapters.queue, adapters.registry
    uow: UnitOfWorkFactory = database.uow_factory()
    cache = None
    if adapters.redis is not None:
        from ptw.infra.cache import caching_uow_factory

        uow = cached_uow = caching_uow_factory(uow, adapters.redis, settings.redis_prefix)
        cache = cached_uow.cache
    validator = JsonSchemaValidator()
    strategy = OptunaStrategy()
    metrics = MetricService(uow, bus, log=adapters.metric_log)
    quotas = Quotas(
        max_queued_runs=settings.max_queued_runs,
        max_optimizations=settings.max_optimizations,
        max_running_runs=settings.max_running_runs,
    )
    files = artifact_files(settings)
    services = Services(
        settings=settings,
        database=database,
        bus=bus,
        queue=queue,
        access=AccessService(uow, bus),
        workflows=WorkflowService(uow, validator, EntrypointCheck(bus, registry)),
        runs=RunService(uow, bus, queue, validator, quotas=quotas),
        metrics=metrics,
        execution=ExecutionService(uow, bus, queue, settings.max_attempts, files=files, quotas=quotas),
        artifacts=ArtifactService(uow, files),
        optimizations=OptimizationService(
            uow, bus, strategy, validator, importance=OptunaImportance(), quotas=quotas
        ),
        registry=registry,
        recovery=RecoveryService(uow, bus, queue, settings.max_attempts),
        tracking=TrackingService(uow, bus, metrics),
        pool=PoolService(registry, queue, min_workers=settings.executors, max_workers=settings.executors),
        redis=adapters.redis,
        cache=cache,
        closers=adapters.closers,
        rate_limiter=rate_limiter_for(settings, adapters.redis),
        auth_failure_limiter=auth_failure_limiter_for(settings, adapters.redis),
    )
    lease = PostgresLease(database.engine) if database.dialect == "postgresql" else LocalLease()
    services.optimization_driver = driver = OptimizationDriver(uow, bus, queue, strategy, lease, validator)
    services.optimizations.on_start = driver.wake
    await services.workflows.install_builtins(builtin_specs())
    return services
