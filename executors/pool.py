"""The local executor pool of ``ptw serve --executors N``: N slots, each a warm runner waiting for a job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from domain.clock import utcnow
from domain.executors import ExecutorState
from domain.ports import EventBus, ExecutorRegistry
from domain.runs import RunJob
from domain.services.execution import ExecutionService
from domain.services.metrics import MetricService
from executors.device import resource_classes_for, threads_per_slot
from executors.supervisor import PruneAdvisor, RunSupervisor, SupervisionLimits
from executors.warm_runner import RunnerFailed, WarmRunner

log = logging.getLogger(__name__)


class JobSource(Protocol):
    """Where the pool's slots get jobs (the in-process queue of embedded mode)."""

    async def take(self, resource_classes: Sequence[str]) -> RunJob: ...
    async def enqueue(self, job: RunJob) -> None: ...
    def forget(self, run_id: str, attempt: int) -> None: ...


class LocalExecutorPool:
    """Slots run one attempt at a time each, in a child process started before the job arrives.

    ``stop`` ends the children of runs in progress without finishing those runs: they are executor
    losses, which the recovery service retries; ``stop`` returns their ids."""

    def __init__(
        self,
        execution: ExecutionService,
        metrics: MetricService,
        bus: EventBus,
        queue: JobSource,
        registry: ExecutorRegistry,
        artifacts_dir: Path,
        slots: int,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        *,
        limits: SupervisionLimits | None = None,
        heartbeat_interval: float = 5.0,
        prune_advisor: PruneAdvisor | None = None,
        name: str | None = None,
    ) -> None:
        self.execution = execution
        self.metrics = metrics
        self.bus = bus
        self.queue = queue
        self.registry = registry
        self.artifacts_dir = Path(artifacts_dir)
        self.python = python
        self.env = dict(env or {})
        self.limits = limits or SupervisionLimits()
        self.heartbeat_interval = heartbeat_interval
        self.prune_advisor = prune_advisor
        prefix = name or f"local-{socket.gethostname()}-{os.getpid()}"
        self.slots = [_Slot(self, f"{prefix}-{i}") for i in range(slots)]
        self._threads = threads_per_slot(slots)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self._tasks = [asyncio.create_task(slot.serve(), name=slot.id) for slot in self.slots]
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="executor-heartbeat"))

    async def stop(self, grace: float = 5.0) -> list[str]:
        """Stop every slot and child within about ``grace`` seconds; the ids of the runs cut short."""
        interrupted = [slot.run_id for slot in self.slots if slot.run_id]
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
        for slot in self.slots:  # whatever did not stop in time is killed outright
            if slot.runner is not None:
                slot.runner.signal(signal.SIGKILL)
        for slot in self.slots:
            with contextlib.suppress(Exception):
                await self.registry.leave(slot.id)
        self._tasks = []
        return interrupted

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            for slot in self.slots:
                await slot.announce()

    async def _start_runner(self) -> WarmRunner:
        return await WarmRunner.start(
            self.artifacts_dir, python=self.python, threads=self._threads, env=self.env
        )


class _Slot:
    def __init__(self, pool: LocalExecutorPool, slot_id: str) -> None:
        self.pool = pool
        self.id = slot_id
        self.runner: WarmRunner | None = None
        self.run_id: str | None = None
        self.resource_classes: tuple[str, ...] = ()
        self.devices: tuple[str, ...] = ()

    async def serve(self) -> None:
        try:
            while True:
                try:
                    await self._serve_one()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("executor %s failed between runs; going on", self.id)
                    await asyncio.sleep(1.0)
        finally:
            if self.runner is not None:
                await self.runner.close_idle(0.5)
                await self.runner.stop(1.0, 1.0)

    async def _serve_one(self) -> None:
        if self.runner is None or self.runner.returncode is not None:
            self.runner = await self._warm_runner()
            await self.announce()
        job = await self.pool.queue.take(self.resource_classes)
        if self.runner.returncode is not None:  # it died while waiting: no run should pay for that
            self.runner = await self._warm_runner()
        try:
            claimed = await self.pool.execution.claim(job.run_id, job.attempt, self.id)
        except Exception:
            log.exception("executor %s cannot claim run %s; putting it back", self.id, job.run_id)
            await asyncio.sleep(1.0)
            self.pool.queue.forget(job.run_id, job.attempt)
            await self.pool.queue.enqueue(job)
            return
        try:
            if claimed is None:
                log.info(
                    "executor %s skips run %s attempt %s: stale or duplicate",
                    self.id,
                    job.run_id,
                    job.attempt,
                )
                return
            self.run_id = claimed.run_id
            await self.announce()
            supervisor = RunSupervisor(
                self.pool.execution,
                self.pool.metrics,
                self.pool.bus,
                claimed,
                self.runner,
                self.pool.limits,
                self.pool.prune_advisor,
            )
            await supervisor.run()
            self.runner = None  # one child per attempt: the next job gets a fresh runner
        finally:
            self.pool.queue.forget(job.run_id, job.attempt)
            if self.run_id is not None:
                self.run_id = None
                await self.announce()

    async def _warm_runner(self) -> WarmRunner:
        """A runner that said it is ready; a broken environment is retried with a growing pause."""
        delay = 1.0
        while True:
            runner = await self.pool._start_runner()
            self.runner = runner
            try:
                ready = await runner.ready()
            except RunnerFailed as exc:
                log.error("executor %s: %s; retrying in %.0f s", self.id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.resource_classes = resource_classes_for(str(ready.get("device", "cpu")))
            self.devices = (str(ready.get("name") or ready.get("device")),)
            return runner

    async def announce(self) -> None:
        if not self.resource_classes:
            return  # not warm yet: nothing to offer
        state = ExecutorState(
            id=self.id,
            resource_classes=self.resource_classes,
            busy=self.run_id is not None,
            seen_at=utcnow(),
            devices=self.devices,
            run_id=self.run_id,
        )
        try:
            await self.pool.registry.announce(state)
        except Exception:
            log.warning("executor %s cannot announce itself", self.id, exc_info=True)
