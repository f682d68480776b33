"""``ptw serve``: wire the services, the local executors and the ASGI app, then run uvicorn."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvicorn
from rich.console import Console

from ptw.api.app import create_app
from ptw.api.errors import RedactDatabaseErrors
from ptw.executors.pool import LocalExecutorPool
from ptw.infra.bootstrap import bootstrap
from ptw.infra.settings import Settings
from ptw.lifecycle import background_services, freeze_start_up_heap, optimization_driving, prune_advisor
from ptw.local_key import ensure_local_admin_key
from ptw.worker import executor_worker

console = Console(stderr=True)
Hook = Callable[[], Awaitable[object]]


async def serve(
    settings: Settings,
    host: str,
    port: int,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    services = await bootstrap(settings, migrate=settings.embedded)
    startup: list[Hook] = []
    shutdown: list[Hook] = []
    if settings.embedded:
        key_file, created = await ensure_local_admin_key(services)
        verb = "Created" if created else "Using"
        console.print(f"{verb} the local admin key in [bold]{key_file}[/] (project 'default').")
        # Embedded mode: no executor of an earlier process survives it, so its active runs are retried.
        recovered = await services.recovery.recover_lost(reason="server restarted")
        if recovered:
            console.print(f"Recovered {len(recovered)} run(s) left active by an earlier server.")
    else:
        # Production: other replicas' workers may be running the active runs, so they are left alone;
        # queued runs are enqueued again in case Redis lost them (the queue is idempotent per attempt).
        requeued = await services.recovery.requeue_waiting()
        console.print(f"Production mode: {requeued} queued run(s) checked in the queue.")
    if settings.executors > 0 and not settings.embedded:
        # `ptw serve --executors N` in production: an in-process `ptw worker` on the shared queue.
        worker = executor_worker(services, settings.executors)
        startup.append(worker.start)
        shutdown.append(worker.stop)
    elif settings.executors > 0:
        pool = LocalExecutorPool(
            execution=services.execution,
            metrics=services.metrics,
            bus=services.bus,
            queue=services.local_queue,
            registry=services.registry,
            artifacts_dir=settings.artifacts_dir,
            slots=settings.executors,
            env=settings.runner_env(),
            prune_advisor=prune_advisor(services),
        )
        startup.append(pool.start)

        async def stop_pool() -> None:
            interrupted = await pool.stop()
            if interrupted:
                await services.recovery.recover_lost(interrupted, reason="executor stopped")

        shutdown.append(stop_pool)
    # Started after the executors and stopped after them: what stopped runs logged is still ingested.
    # (Embedded: the run monitor of external runs alone.)
    background = contextlib.AsyncExitStack()

    async def start_background() -> None:
        await background.enter_async_context(background_services(services, requeue=True))

    startup.append(start_background)
    shutdown.append(background.aclose)
    if not settings.embedded:
        if settings.cloudwatch_namespace:
            from ptw.infra.cloudwatch import QueueDepthPublisher

            # The cloud's executor autoscaling reads this: published by the API, which runs at zero workers.
            publisher = QueueDepthPublisher.for_namespace(services.queue, settings.cloudwatch_namespace)
            startup.append(publisher.start)
            shutdown.append(publisher.stop)
    driving = contextlib.AsyncExitStack()

    async def start_driving() -> None:
        await driving.enter_async_context(optimization_driving(services))

    startup.append(start_driving)
    shutdown.append(driving.aclose)
    shutdown.append(services.aclose)
    app = create_app(services, on_startup=startup, on_shutdown=shutdown)
    scheme = "https" if ssl_certfile else "http"
    console.print(
        f"PyTorch-workflow on {scheme}://{host}:{port}/graphql "
        f"({'embedded' if settings.embedded else 'production'} mode, {settings.executors} local executor(s))"
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactDatabaseErrors())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        lifespan="on",
        # No permessage-deflate: compressing every live message once per subscriber cost replica B about
        # 5 % of its CPU with 50 subscribers of one run (bench.latency), and each client as much to inflate.
        ws_per_message_deflate=False,
    )
    freeze_start_up_heap()
    await uvicorn.Server(config).serve()
