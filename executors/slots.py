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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptw.domain.clock import utcnow
from ptw.domain.executors import ExecutorState
from ptw.domain.ports import EventBus, ExecutorRegistry
from ptw.domain.retry import Backoff, every, retrying
from ptw.domain.services.execution import AtQuota, ExecutionService
from ptw.domain.services.metrics import MetricService
from ptw.executors import protocol
from ptw.executors.device import resource_classes_for
from ptw.executors.entrypoint_probe import answer_probes
from ptw.executors.fork_client import ForkFailed, ForkServerClient
from ptw.executors.gang import Gang, NotPlaced, follow
from ptw.executors.supervisor import DRAIN, PruneAdvisor, RunSupervisor, SupervisionLimits
from ptw.executors.warm_runner import RunnerFailed, WarmRunner, training_environ_with

log = logging.getLogger(__name__)

RUNNER_BACKOFF = Backoff(first=1.0, limit=30.0)  # a broken environment: pythonpath, device, memory
# A job whose run waits for its project's running-runs quota goes back to the queue for this many seconds
# (in arq behind every other project's jobs, whose scores are in the past), then is claimed again.
QUOTA_RETRY = 2.0


class ClaimFailed(Exception):
    """The database could not be asked whether the job may run; the job should be delivered again."""


class ClaimDeferred(Exception):
    """The run may not start yet (its project at its running-runs quota): deliver the job again later,
    behind the other projects' jobs, without holding the slot meanwhile."""

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(f"run {run_id} is {reason}")
        self.run_id = run_id


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
    # The executor pools served (``ptw worker --pool``); empty: the shared pool.
    pools: tuple[str, ...] = ()

    def runner_environ(self) -> dict[str, str]:
        return training_environ_with(self.env)

    async def answer_probes(self, slots: Sequence[ExecutorSlot]) -> None:
        """Answer the control plane's entrypoint probes for ``slots`` (``entrypoint_probe``), until
        cancelled."""
        await answer_probes(
            self.bus, lambda: {s.id: s.resource_classes for s in slots}, self.python, self.runner_environ
        )


class ExecutorSlot:
    """Runs one attempt at a time, each in a fresh child that is ready (torch imported) before the job.

    Children are forked from the slot's fork server, which imports torch once; the moment an attempt takes
    the spare child, the next spare is forked, so a job that arrives right after (or while) the last one
    runs finds one ready: back-to-back and burst dispatch both skip the import."""

    def __init__(self, services: SlotServices, slot_id: str) -> None:
        self.services = services
        self.id = slot_id
        self.runner: WarmRunner | None = None  # the runner of the attempt in progress
        self.spare: WarmRunner | None = None  # the ready runner the next attempt takes
        self.run_id: str | None = None
        self.supervisor: RunSupervisor | None = None
        self.draining = False
        self.resource_classes: tuple[str, ...] = ()
        self.devices: tuple[str, ...] = ()
        self._forks: ForkServerClient | None = None
        self._warming: asyncio.Task[None] | None = None

    @property
    def warm(self) -> bool:
        return self.spare is not None and self.spare.returncode is None

    def prewarm(self) -> None:
        """Fork the next runner in the background, so the next job finds it warm."""
        if not self.warm and (self._warming is None or self._warming.done()):
            self._warming = asyncio.create_task(self._start_runner(), name=f"{self.id}-warming")

    async def ready(self) -> None:
        """Wait until the slot holds a ready spare runner, starting one if it has none or it died."""
        while not self.warm:
            self.prewarm()
            assert self._warming is not None
            await asyncio.shield(self._warming)  # a cancelled caller leaves the warm-up to the next one

    async def execute(self, run_id: str, attempt: int, gang: Gang | None = None, nodes: int = 1) -> bool:
        """Claim the attempt and supervise it to its end in this slot's spare runner; False when the job
        is stale or a duplicate delivery (nothing ran). Raises ClaimFailed when the claim itself failed,
        ClaimDeferred when the run has to wait for its project's quota. With a ``gang``, this slot is node 0
        of a ``nodes``-node run: it claims only once the gang is assembled, and raises NotPlaced when it
        cannot be now (executors/gang.py)."""
        await self.ready()
        execution = self.services.execution
        node: dict[str, Any] | None = None
        try:
            if gang is None:
                job = await execution.claim(run_id, attempt, self.id)
            else:
                claim = lambda: execution.claim(run_id, attempt, self.id)  # noqa: E731
                job, node = await gang.lead(execution, run_id, attempt, nodes, claim)
        except AtQuota as waiting:
            raise ClaimDeferred(run_id, str(waiting)) from waiting
        except NotPlaced:
            raise
        except Exception as exc:
            raise ClaimFailed(f"executor {self.id} cannot claim run {run_id}: {exc!r}") from exc
        if job is None:
            log.info("executor %s skips run %s attempt %s: stale or duplicate", self.id, run_id, attempt)
            return False
        runner, self.spare = self.spare, None  # one child per attempt: this one is used up
        assert runner is not None
        self.runner, self.run_id = runner, job.run_id
        if not self.draining:
            self.prewarm()
        s = self.services
        self.supervisor = RunSupervisor(
            s.execution, s.metrics, s.bus, job, runner, s.limits, s.prune_advisor, node=node
        )
        if self.draining:
            self.supervisor.drain()
        beating = asyncio.create_task(self._beat(job.run_id, job.attempt), name=f"{self.id}-heartbeat")
        await self.announce()
        try:
            await self.supervisor.run()
            self.runner = None  # kept when interrupted, so that stopping the slot can kill it
        finally:
            beating.cancel()
            self.run_id, self.supervisor = None, None
            await self.announce()
        return True

    async def execute_node(
        self, gang: Gang, run_id: str, attempt: int, rank: int, endpoint: str, token: str
    ) -> bool:
        """Node ``rank`` of a multi-node run's attempt: join the gang node 0 assembles, then run this node
        until the attempt ends. False when the gang was called off or the attempt is no longer current."""
        await self.ready()
        if not await gang.join(token, self.id):
            return False
        job = await self.services.execution.node_job(run_id, attempt, claimed=True)
        if job is None:
            return False
        runner, self.spare = self.spare, None
        assert runner is not None
        self.runner, self.run_id = runner, run_id
        if not self.draining:
            self.prewarm()
        await self.announce()
        try:
            placement = {"rendezvous": endpoint, "node_rank": rank}
            await follow(self.services.execution, job, runner, placement, self.services.limits.kill_grace)
            self.runner = None
        finally:
            self.run_id = None
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

        async def beat() -> None:
            if not await self.services.execution.heartbeat(run_id, attempt, self.id):
                log.info("executor %s: run %s attempt %s is no longer its own", self.id, run_id, attempt)

        await every(self.services.run_heartbeat, beat, f"heartbeat run {run_id} from {self.id}", log)

    async def close(self, grace: float = 1.0) -> None:
        """Stop the spare runner (and any warm-up under way) and the fork server; a busy runner is
        stopped by its supervisor."""
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._warming
        if self.spare is not None:
            await self.spare.close_idle(0.5)
            self.spare = None
        if self.runner is not None:
            await self.runner.stop(grace, grace)
        if self._forks is not None:
            await self._forks.close(grace)
            self._forks = None

    def kill(self) -> None:
        for runner in (self.runner, self.spare):
            if runner is not None:
                runner.signal(signal.SIGKILL)

    async def adopt_fork_server(self, forks: ForkServerClient) -> None:
        """Take a fork server started for this slot before the slot existed (``ptw worker`` starts them
        first thing, so torch is imported while the worker itself starts); one started otherwise than this
        slot would start it (interpreter, artifacts, threads, environment) is closed instead."""
        s = self.services
        if self._forks is None and forks.started_with(
            s.artifacts_dir, s.python, s.threads, s.runner_environ()
        ):
            self._forks = forks
            return
        log.warning(
            "executor %s: the fork server started early does not fit this slot; starting its own", self.id
        )
        await forks.close(0.5)

    async def _fork_server(self) -> ForkServerClient:
        if self._forks is not None and not self._forks.alive:
            with contextlib.suppress(ForkFailed):
                await self._forks.ready()  # an adopted server may still be importing torch
        if self._forks is None or not self._forks.alive:
            if self._forks is not None:
                await self._forks.close(0.5)
            s = self.services
            self._forks = await ForkServerClient.start(
                s.artifacts_dir,
                python=s.python,
                threads=s.threads,
                env=s.runner_environ(),  # PYTHONPATH: the forks import from here
            )
        return self._forks

    async def _start_runner(self) -> None:
        """A runner that said it is ready; a broken environment is retried with a growing pause."""
        runner, ready = await retrying(
            self._fork_runner,
            RUNNER_BACKOFF,
            retry_on=(RunnerFailed, ForkFailed, OSError),
            on_failure=lambda exc, pause: log.error(
                "executor %s: %s; retrying in %.0f s", self.id, exc, pause
            ),
        )
        self.resource_classes = resource_classes_for(ready.device, self.services.pools)
        self.devices = (ready.name or ready.device,)
        self.spare = runner
        await self.announce()

    async def _fork_runner(self) -> tuple[WarmRunner, protocol.Ready]:
        runner = await WarmRunner.fork(await self._fork_server(), env=self.services.env)
        try:
            return runner, await runner.ready()
        except asyncio.CancelledError:
            await runner.stop(0.5, 0.5)
            raise

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
