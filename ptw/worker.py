"""``ptw worker``: wire the production services and run an executor until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Mapping, Sequence

from arq.connections import ArqRedis
from rich.console import Console

from ptw.api.errors import RedactDatabaseErrors
from ptw.executors.device import resource_classes_for, threads_per_slot
from ptw.executors.fork_client import ForkServerClient
from ptw.executors.slots import SlotServices
from ptw.executors.worker import ExecutorWorker
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.queue.arq_queue import RUN_FUNCTION, ArqJobQueue
from ptw.infra.settings import Settings
from ptw.lifecycle import background_services, freeze_start_up_heap, prune_advisor

console = Console(stderr=True)


def executor_worker(
    services: Services,
    slots: int,
    *,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    pools: Sequence[str] | None = None,
) -> ExecutorWorker:
    """An executor on the production queue of ``services`` (which must be production ones), serving
    ``pools`` (default: the settings' ``worker_pools``; none: the shared pool)."""
    queue = services.queue
    if not isinstance(queue, ArqJobQueue) or services.redis is None:
        raise RuntimeError("`ptw worker` needs production mode: set PTW_REDIS_URL and PTW_DATABASE_URL")
    settings = services.settings
    served = tuple(settings.worker_pools if pools is None else pools)

    async def recover(run_ids: list[str]) -> None:
        # Only runs its own slots still hold: the run monitor may have given them to another executor.
        held_by = [slot.id for slot in worker.slots]
        await services.recovery.recover_lost(run_ids, reason="executor stopped", held_by=held_by)

    worker = ExecutorWorker(
        SlotServices(
            execution=services.execution,
            metrics=services.metrics,
            bus=services.bus,
            registry=services.registry,
            artifacts_dir=settings.artifacts_dir,
            env={**settings.runner_env(), **(env or {})},
            threads=threads_per_slot(slots),
            run_heartbeat=settings.executor_heartbeat,
            prune_advisor=prune_advisor(services),
            pools=served,
        ),
        ArqRedis(services.redis.connection_pool),
        {rc: queue.queue_name(rc) for rc in resource_classes_for("cuda", served)},
        RUN_FUNCTION,
        slots=slots,
        name=name or f"worker-{socket.gethostname()}-{os.getpid()}",
        poll_delay=settings.worker_poll_delay,
        heartbeat_interval=settings.executor_heartbeat,
        drain_grace=settings.drain_grace,
        on_interrupted=recover,
    )
    return worker


async def run_worker(settings: Settings, fork_servers: Sequence[ForkServerClient] = ()) -> None:
    """``fork_servers``: started for the slots before this module was even imported (``ptw worker``'s
    command does it); each slot adopts one, and they are closed if the worker cannot start."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactDatabaseErrors())
    try:
        services = await bootstrap(settings)
    except BaseException:
        await asyncio.gather(*(forks.close(0.5) for forks in fork_servers), return_exceptions=True)
        raise
    freeze_start_up_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        worker = executor_worker(services, settings.worker_slots)
        for slot, forks in zip(worker.slots, fork_servers, strict=False):
            await slot.adopt_fork_server(forks)
        async with background_services(services):
            console.print(f"Warming {settings.worker_slots} slot(s)...")
            starting = asyncio.create_task(worker.start())
            await asyncio.wait([starting, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED")
            if starting.done():
                starting.result()
                classes = ", ".join(worker.resource_classes)
                console.print(f"Worker ready: {settings.worker_slots} slot(s) taking {classes} runs.")
                await stop.wait()
            else:
                starting.cancel()
            console.print(
                f"Stopping: no new runs; runs in progress have {settings.drain_grace:g} s to checkpoint, "
                "then go back to the queue."
            )
            interrupted = await worker.stop()
            if interrupted:
                console.print(f"Recovered {len(interrupted)} run(s) that could not be handed back.")
    finally:
        await services.aclose()
