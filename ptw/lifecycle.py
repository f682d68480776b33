"""Background work of a production process (`ptw serve`, `ptw worker`), started and stopped with it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ptw.domain.retry import every
from ptw.domain.runs import RunJob
from ptw.domain.services.run_monitor import PlacementWatch, RunMonitor
from ptw.executors.trial_objective import TrialAdvisor
from ptw.infra.bootstrap import Services
from ptw.infra.ingest.metric_ingester import MetricIngester

log = logging.getLogger(__name__)


def freeze_start_up_heap() -> None:
    """Move what start-up built (modules, the schema, torch, the engine) out of the garbage collector's
    sight: it lives as long as the process. A full collection while serving then walks only what requests
    made; before, one started by a request's allocations walked ~220,000 objects and held a replica's event
    loop for 100-200 ms (the second of two 12 KB documents: 250 ms instead of 35)."""
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def background_services(services: Services, *, requeue: bool = False) -> AsyncIterator[None]:
    """Production: a metric ingester per process (their consumer group shares the streams among them).
    With ``requeue`` (API replicas) the control loops of docs/reliability.md: the queue reconciliation
    (QUEUED runs enqueued again: a no-op for jobs Redis still holds, a new job for one it lost), the run
    monitor (attempts whose executor stopped heartbeating are retried) and the placement watch (runs no
    live executor can take say so). Every replica runs them; each action re-checks under a row lock.
    Embedded: only the run monitor of external runs (ptw.init() in other processes)."""
    settings = services.settings
    if services.redis is None:
        # Embedded: the executors are this process's own; only external runs' heartbeats are judged.
        external = RunMonitor(services.recovery, settings.run_lost_after, only_external=True)
        watch = _every(settings.run_monitor_interval, external.check, "check the heartbeats of external runs")
        try:
            yield
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        return
    # Batches an ingester took and never stored (its process died) are taken over by another one after
    # the time that makes an executor lost: the silence of a process is judged alike.
    ingester = MetricIngester(
        services.redis,
        settings.redis_prefix,
        services.metrics,
        claim_idle_ms=int(settings.run_lost_after * 1000),
    )
    await ingester.start()
    tasks: list[asyncio.Task[None]] = []
    if requeue:
        monitor = RunMonitor(services.recovery, settings.run_lost_after)
        placement = PlacementWatch(services.recovery, services.registry, settings.placement_timeout)
        tasks = [
            _every(settings.reconcile_interval, services.recovery.requeue_waiting, "re-enqueue queued runs"),
            _every(settings.run_monitor_interval, monitor.check, "check the heartbeats of active runs"),
            _every(settings.run_monitor_interval, placement.check, "check that queued runs can be placed"),
        ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await ingester.stop()


def _every(interval: float, action: Callable[[], Awaitable[object]], what: str) -> asyncio.Task[None]:
    return asyncio.create_task(every(interval, action, what, log), name=what)


@dataclass
class _TrialAdvisor:
    services: Services

    async def observe(self, job: RunJob, values: dict[int, float], source: str) -> bool:
        return await self.services.optimizations.observe(job.run_id, values, source)

    async def objective_missing(self, job: RunJob, logged: Sequence[str]) -> None:
        await self.services.optimizations.objective_missing(job.run_id, logged)


def prune_advisor(services: Services) -> TrialAdvisor:
    """The supervisors' hook for a trial's objective values: the optimization decides whether to prune."""
    return _TrialAdvisor(services)


@asynccontextmanager
async def optimization_driving(services: Services) -> AsyncIterator[None]:
    """Run this process's optimization driver (which advances the optimizations it holds a lease on)."""
    driver = services.optimization_driver
    if driver is None:
        yield
        return
    task = asyncio.create_task(driver.run(), name="optimization-driver")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
