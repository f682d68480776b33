"""``ptw worker --autoscale``: wire the autoscaler to the production queue and run it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping

from rich.console import Console

from ptw.domain.executors import ScalingPolicy
from ptw.executors.autoscaler import QueueDepthAutoscaler, WorkerProcess
from ptw.executors.device import GpuLeases, resource_classes_for, visible_gpus
from ptw.infra.bootstrap import bootstrap
from ptw.infra.queue.arq_queue import ArqJobQueue
from ptw.infra.settings import Settings

console = Console(stderr=True)


def worker_command(slots: int) -> list[str]:
    """A plain ``ptw worker``: the worker knows nothing of the autoscaler above it."""
    return [sys.executable, "-m", "ptw.cli", "worker", "--slots", str(slots)]


def executor_prefix(hostname: str, pid: int) -> str:
    """How the slots of the worker process ``pid`` name themselves (``ptw.worker.executor_worker``)."""
    return f"worker-{hostname}-{pid}-"


async def launch_worker(slots: int, extra_env: Mapping[str, str]) -> WorkerProcess:
    # Its own session: a Ctrl-C in the terminal reaches the autoscaler alone, which then drains each
    # worker once, rather than every worker getting the signal twice.
    return await asyncio.create_subprocess_exec(
        *worker_command(slots), env={**os.environ, **extra_env}, start_new_session=True
    )


async def run_autoscaler(settings: Settings, policy: ScalingPolicy) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    services = await bootstrap(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if not isinstance(services.queue, ArqJobQueue):
            raise RuntimeError("`ptw worker --autoscale` needs production mode: set PTW_REDIS_URL")
        gpus = GpuLeases(await asyncio.to_thread(visible_gpus))
        classes = resource_classes_for("cuda" if gpus.gpus else "cpu", settings.worker_pools)
        pools = {"PTW_WORKER_POOLS": json.dumps(settings.worker_pools)} if settings.worker_pools else {}
        hostname = socket.gethostname()
        autoscaler = QueueDepthAutoscaler(
            services.queue,
            services.registry,
            lambda env: launch_worker(settings.worker_slots, {**env, **pools}),
            policy,
            autoscaler_id=f"autoscaler-{hostname}-{os.getpid()}",
            resource_classes=classes,
            executor_prefix=lambda pid: executor_prefix(hostname, pid),
            gpus=gpus,
        )
        devices = ", ".join(f"{g.index}: {g.name}" for g in gpus.gpus) or "no GPU"
        console.print(
            f"Autoscaling `ptw worker` from {policy.minimum} to {policy.maximum} for "
            f"{', '.join(classes)} runs ({devices}); idle workers leave after {policy.idle_timeout:g} s."
        )
        if gpus.gpus and policy.maximum > len(gpus.gpus):
            console.print(
                f"[yellow]--max {policy.maximum} > {len(gpus.gpus)} GPUs: some runs will share one.[/]"
            )
        await autoscaler.run(stop)
        console.print("Autoscaler stopped: every worker drained.")
    finally:
        await services.aclose()
