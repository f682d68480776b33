"""Background work of a production process (`ptw serve`, `ptw worker`), started and stopped with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from infra.bootstrap import Services
from infra.ingest.metric_ingester import MetricIngester

log = logging.getLogger(__name__)

# Redis may lose a queued job (a restart, an eviction, a job that gave up): PostgreSQL still says QUEUED,
# so every API replica enqueues such runs again now and then (a no-op for jobs the queue still holds).
REQUEUE_INTERVAL = 60.0


@asynccontextmanager
async def background_services(services: Services, *, requeue: bool = False) -> AsyncIterator[None]:
    """Production: a metric ingester per process (their consumer group shares the streams among them);
    with ``requeue`` (API replicas), the periodic re-enqueueing of queued runs."""
    if services.redis is None:
        yield
        return
    ingester = MetricIngester(services.redis, services.settings.redis_prefix, services.metrics)
    await ingester.start()
    requeuing = asyncio.create_task(_requeue_waiting(services)) if requeue else None
    try:
        yield
    finally:
        if requeuing is not None:
            requeuing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await requeuing
        await ingester.stop()


async def _requeue_waiting(services: Services) -> None:
    while True:
        await asyncio.sleep(REQUEUE_INTERVAL)
        try:
            await services.recovery.requeue_waiting()
        except Exception:
            log.warning("cannot re-enqueue the queued runs; trying again later", exc_info=True)
