"""One executor slot: a warm runner kept ready, then a claimed attempt supervised in it, whatever the source.

The embedded pool (jobs from the in-process queue) and ``ptw worker`` (jobs from arq) both run attempts
through these slots, so claiming, supervision and announcing the executor are the same code in both modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ptw.domain.clock import utcnow
from ptw.domain.executors import ExecutorState
from ptw.domain.ports import EventBus, ExecutorRegistry
from ptw.domain.services.execution import ExecutionService
from ptw.domain.services.metrics import MetricService
from ptw.executors.device import resource_classes_for
from ptw.executors.supervisor import DRAIN, PruneAdvisor, RunSupervisor, SupervisionLimits
from ptw.executors.warm_runner import RunnerFailed, WarmRunner

log = logging.getLogger(__name__)


class ClaimFailed(Exception):
    """The database could not be asked whether the job may run; the job should be delivered again."""


@dataclass
class SlotServices:
    """What the slots of one executor process share."""

    execution: ExecutionService
    metrics: MetricService
    bus: EventBus
    registry: ExecutorRegistry
    artifacts_dir: Path
    python: str = sys.executable
    env: Mapping[str, str] = field(default_factory=dict)
    threads: int | None = None
    limits: SupervisionLimits = field(default_factory=SupervisionLimits)
    prune_advisor: PruneAdvisor | None = None
    # Seconds between heartbeats of a run in progress (written to the run in the database).
    run_heartbeat: float = 5.0


class ExecutorSlot:
    """Runs one attempt at a time, each in a fresh child started (torch imported) before the job arrives."""

    def __init__(self, services: SlotServices, slot_id: str) -> None:
        self.services = services
        self.id = slot_id
        self.runner: WarmRunner | None = None
        self.run_id: str | None = None
        self.supervisor: RunSupervisor | None = None
        self.draining = False
        self.resource_classes: tuple[str, ...] = ()
        self.devices: tuple[str, ...] = ()
        self._ready: WarmRunner | None = None  # the runner that said ready, once it has
        self._warming: asyncio.Task[None] | None = None

    @property
    def warm(self) -> bool:
        return self._ready is not None and self._ready is self.runner and self.runner.returncode is None

    def prewarm(self) -> None:
        """Start the next runner in the background, so the next job finds it warm."""
        if not self.warm and (self._warming is None or self._warming.done()):
            self._warming = asyncio.create_task(self._start_runner(), name=f"{self.id}-warming")

    async def ready(self) -> None:
        """Wait until the slot holds a ready runner, starting one if it has none or the last one died."""
        while not self.warm:
            self.prewarm()
            assert self._warming is not None
            await asyncio.shield(self._warming)  # a cancelled caller leaves the warm-up to the next one

    async def execute(self, run_id: str, attempt: int) -> bool:
        """Claim the attempt and supervise it to its end in this slot's runner; False when the job is
        stale or a duplicate delivery (nothing ran). Raises ClaimFailed when the claim itself failed."""
        await self.ready()
        try:
            job = await self.services.execution.claim(run_id, attempt, self.id)
        except Exception as exc:
            raise ClaimFailed(f"executor {self.id} cannot claim run {run_id}: {exc!r}") from exc
        if job is None:
            log.info("executor %s skips run %s attempt %s: stale or duplicate", self.id, run_id, attempt)
            return False
        runner = self.runner
        assert runner is not None
        self.run_id, self._ready = job.run_id, None  # one child per attempt: this one is used up
        s = self.services
        self.supervisor = RunSupervisor(s.execution, s.metrics, s.bus, job, runner, s.limits, s.prune_advisor)
        if self.draining:
            self.supervisor.drain()
        beating = asyncio.create_task(self._beat(job.run_id, job.attempt), name=f"{self.id}-heartbeat")
        await self.announce()
        try:
            await self.supervisor.run()
            if self.runner is runner:  # kept when interrupted, so that stopping the slot can kill it
                self.runner = None
        finally:
            beating.cancel()
            self.run_id, self.supervisor = None, None
            await self.announce()
        return True

    def drain(self) -> None:
        """The executor is shutting down: tell the attempt in progress (``ctx.stopping``), and any this
        slot starts from now on; such an attempt is handed back to the queue, not counted as a failure."""
        self.draining = True
        if self.supervisor is not None:
            self.supervisor.drain()

    def end_drain(self) -> None:
        """The grace period is over: stop the child (cancel, SIGTERM, SIGKILL); the run is handed back."""
        if self.supervisor is not None and self.supervisor.draining:
            self.supervisor.request_stop(DRAIN)

    async def _beat(self, run_id: str, attempt: int) -> None:
        """Tell the run monitor this attempt is alive. A refused beat means the attempt is no longer the
        run's (re-queued by the monitor, cancelled...): the supervisor notices it from the run's status."""
        while True:
            await asyncio.sleep(self.services.run_heartbeat)
            try:
                if not await self.services.execution.heartbeat(run_id, attempt, self.id):
                    log.info("executor %s: run %s attempt %s is no longer its own", self.id, run_id, attempt)
            except Exception:
                log.warning("executor %s cannot heartbeat run %s", self.id, run_id, exc_info=True)

    async def close(self, grace: float = 1.0) -> None:
        """Stop the idle runner (and any warm-up under way); a busy one is stopped by its supervisor."""
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._warming
        if self.runner is not None:
            await self.runner.close_idle(0.5)
            await self.runner.stop(grace, grace)

    def kill(self) -> None:
        if self.runner is not None:
            self.runner.signal(signal.SIGKILL)

    async def _start_runner(self) -> None:
        """A runner that said it is ready; a broken environment is retried with a growing pause."""
        delay = 1.0
        while True:
            try:
                s = self.services
                runner = await WarmRunner.start(
                    s.artifacts_dir, python=s.python, threads=s.threads, env=s.env
                )
                self.runner = runner
                ready = await runner.ready()
            except (RunnerFailed, OSError) as exc:
                log.error("executor %s: %s; retrying in %.0f s", self.id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.resource_classes = resource_classes_for(str(ready.get("device", "cpu")))
            self.devices = (str(ready.get("name") or ready.get("device")),)
            self._ready = runner
            await self.announce()
            return

    async def announce(self) -> None:
        if not self.resource_classes:
            return  # never warm yet: nothing to offer
        state = ExecutorState(
            id=self.id,
            resource_classes=self.resource_classes,
            busy=self.run_id is not None,
            seen_at=utcnow(),
            devices=self.devices,
            run_id=self.run_id,
        )
        try:
            await self.services.registry.announce(state)
        except Exception:
            log.warning("executor %s cannot announce itself", self.id, exc_info=True)
