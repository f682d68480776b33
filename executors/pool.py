"""The local executor pool of ``ptw serve --executors N``: N slots, each a warm runner waiting for a job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from ptw.domain.ports import EventBus, ExecutorRegistry
from ptw.domain.retry import every
from ptw.domain.runs import RunJob
from ptw.domain.services.execution import ExecutionService
from ptw.domain.services.metrics import MetricService
from ptw.executors.device import threads_per_slot
from ptw.executors.slots import QUOTA_RETRY, ClaimDeferred, ClaimFailed, ExecutorSlot, SlotServices
from ptw.executors.supervisor import PruneAdvisor, SupervisionLimits

log = logging.getLogger(__name__)


class JobSource(Protocol):
    """Where the pool's slots get jobs (the in-process queue of embedded mode)."""

    async def take(self, resource_classes: Sequence[str]) -> RunJob: ...
    async def enqueue(self, job: RunJob) -> None: ...
    def forget(self, run_id: str, attempt: int) -> None: ...


class LocalExecutorPool:
    """Slots run one attempt at a time each, in a child process started before the job arrives.

    ``stop`` drains: the runs in progress are told (``ctx.stopping``), given a grace period, then stopped,
    and handed back to the queue as their next attempt without counting a failure. It returns the ids of
    the runs that were in progress: ``RecoveryService.recover_lost`` retries those it could not hand back
    and leaves the others alone."""

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
        run_heartbeat: float = 5.0,
        prune_advisor: PruneAdvisor | None = None,
        name: str | None = None,
        pools: tuple[str, ...] = (),
    ) -> None:
        self.queue = queue
        self.registry = registry
        self.heartbeat_interval = heartbeat_interval
        self.services = SlotServices(
            execution=execution,
            metrics=metrics,
            bus=bus,
            registry=registry,
            artifacts_dir=Path(artifacts_dir),
            python=python,
            env=dict(env or {}),
            threads=threads_per_slot(slots),
            limits=limits or SupervisionLimits(),
            prune_advisor=prune_advisor,
            run_heartbeat=run_heartbeat,
            pools=pools,
        )
        prefix = name or f"local-{socket.gethostname()}-{os.getpid()}"
        self.slots = [ExecutorSlot(self.services, f"{prefix}-{i}") for i in range(slots)]
        self._tasks: list[asyncio.Task[None]] = []
        self._putting_back: set[asyncio.Task[None]] = set()  # jobs deferred by a project's quota
        self._stopping = False

    async def start(self) -> None:
        self.services.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self._stopping = False
        for slot in self.slots:
            slot.draining = False
        self._tasks = [asyncio.create_task(self._serve(slot), name=slot.id) for slot in self.slots]
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="executor-heartbeat"))
        probes = self.services.answer_probes(self.slots)
        self._tasks.append(asyncio.create_task(probes, name="entrypoint-probes"))

    async def stop(self, grace: float = 5.0) -> list[str]:
        """Drain every slot: runs in progress get ``grace`` seconds to checkpoint and return, then their
        children are stopped; each is handed back to the queue. Returns the ids of the runs that were in
        progress; the caller recovers them as lost (``recover_lost`` leaves those handed back alone)."""
        self._stopping = True
        stopped = [slot.run_id for slot in self.slots if slot.run_id]
        for slot in self.slots:
            slot.drain()
        busy = [task for slot, task in zip(self.slots, self._tasks, strict=False) if slot.run_id]
        for task in self._tasks:
            if task not in busy:
                task.cancel()  # idle slots, and the heartbeat
        if busy:
            await asyncio.wait(busy, timeout=grace)
            for slot in self.slots:
                slot.end_drain()
            limits = self.services.limits
            await asyncio.wait(busy, timeout=limits.cancel_grace + 2 * limits.kill_grace + 10.0)
        interrupted = [slot.run_id for slot in self.slots if slot.run_id]
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        for slot in self.slots:  # whatever did not stop in time is killed outright
            slot.kill()
        for slot in self.slots:
            with contextlib.suppress(Exception):
                await self.registry.leave(slot.id)
        self._tasks = []
        return list(dict.fromkeys([*stopped, *interrupted]))

    async def _heartbeat(self) -> None:
        await every(self.heartbeat_interval, self._announce, "announce the slots", log)

    async def _announce(self) -> None:
        for slot in self.slots:
            await slot.announce()

    async def _serve(self, slot: ExecutorSlot) -> None:
        try:
            while not self._stopping:
                try:
                    await self._serve_one(slot)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("executor %s failed between runs; going on", slot.id)
                    await asyncio.sleep(1.0)
        finally:
            await slot.close()

    async def _put_back(self, job: RunJob, after: float) -> None:
        await asyncio.sleep(after)
        self.queue.forget(job.run_id, job.attempt)
        await self.queue.enqueue(job)

    async def _serve_one(self, slot: ExecutorSlot) -> None:
        await slot.ready()
        job = await self.queue.take(slot.resource_classes)
        if self._stopping:  # taken as the drain began: leave it queued for the next start
            self.queue.forget(job.run_id, job.attempt)
            await self.queue.enqueue(job)
            return
        try:
            await slot.execute(job.run_id, job.attempt)
        except ClaimDeferred as exc:  # the slot goes on to the next job; this one comes back later
            log.info("%s; putting it back in %.0f s", exc, QUOTA_RETRY)
            later = asyncio.create_task(self._put_back(job, QUOTA_RETRY), name=f"put-back-{job.run_id}")
            self._putting_back.add(later)
            later.add_done_callback(self._putting_back.discard)
            return
        except ClaimFailed:
            log.exception("%s; putting it back", slot.id)
            await asyncio.sleep(1.0)
            self.queue.forget(job.run_id, job.attempt)
            await self.queue.enqueue(job)
            return
        except BaseException:
            self.queue.forget(job.run_id, job.attempt)
            raise
        self.queue.forget(job.run_id, job.attempt)
