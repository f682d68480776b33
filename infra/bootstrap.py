"""The composition root: turns Settings into wired services for the API, the workers, the CLI and tests."""

from __future__ import annotations

from dataclasses import dataclass

from domain.services import (
    AccessService,
    ExecutionService,
    MetricService,
    OptimizationService,
    PoolService,
    RecoveryService,
    RunService,
    WorkflowService,
)
from domain.services.workflows import WorkflowSpec
from infra.db.database import Database
from infra.live.memory_bus import InMemoryEventBus
from infra.live.memory_registry import InMemoryExecutorRegistry
from infra.params_validator import JsonSchemaValidator
from infra.queue.memory_queue import InMemoryJobQueue
from infra.settings import Settings


@dataclass
class Services:
    settings: Settings
    database: Database
    bus: InMemoryEventBus
    queue: InMemoryJobQueue
    access: AccessService
    workflows: WorkflowService
    runs: RunService
    metrics: MetricService
    execution: ExecutionService
    optimizations: OptimizationService
    registry: InMemoryExecutorRegistry
    pool: PoolService
    recovery: RecoveryService

    async def ready(self) -> dict[str, bool]:
        """What /readyz reports: each backing service and whether it answers."""
        return {"database": await self.database.ping()}

    async def aclose(self) -> None:
        await self.bus.close()
        await self.database.dispose()


def builtin_specs() -> list[WorkflowSpec]:
    from executors.workflows import BUILTINS  # data only: importing it does not import torch

    return [
        WorkflowSpec(
            name=b["name"],
            entrypoint=b["entrypoint"],
            params_schema=b["params_schema"],
            defaults=b["defaults"],
            gpus=b.get("gpus"),
            timeout_seconds=b.get("timeout_seconds"),
        )
        for b in BUILTINS
    ]


async def bootstrap(settings: Settings | None = None, *, migrate: bool = True) -> Services:
    settings = settings or Settings()
    if settings.redis_url:
        raise NotImplementedError("production mode (PTW_REDIS_URL) is not wired yet; unset it for embedded")
    database = Database(settings.resolved_database_url)
    if migrate:
        await database.upgrade()
    uow = database.uow_factory()
    bus = InMemoryEventBus()
    queue = InMemoryJobQueue()
    validator = JsonSchemaValidator()
    registry = InMemoryExecutorRegistry()
    services = Services(
        settings=settings,
        database=database,
        bus=bus,
        queue=queue,
        access=AccessService(uow),
        workflows=WorkflowService(uow, validator),
        runs=RunService(uow, bus, queue, validator),
        metrics=MetricService(uow, bus),
        execution=ExecutionService(uow, bus),
        optimizations=OptimizationService(uow),
        registry=registry,
        recovery=RecoveryService(uow, bus, queue, settings.max_attempts),
        pool=PoolService(registry, queue, min_workers=settings.executors, max_workers=settings.executors),
    )
    await services.workflows.install_builtins(builtin_specs())
    return services
