"""The autoscaler of ``ptw worker --autoscale``: ``ptw worker`` processes that follow the queue depth.

A supervisor, not an executor: it runs no job itself. Every ``interval`` it reads the depth of the queues
its workers serve and which of its workers' slots are busy (the executor registry), asks
``domain.executors.plan_scaling`` how many workers that calls for, starts the missing ones at once and
stops the ones idle for the idle timeout with SIGTERM only, so a worker always leaves through its graceful
drain. Its decision is published in the registry, where ``executorPool`` and ``/metrics`` read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ptw.domain.clock import utcnow
from ptw.domain.executors import (
    AutoscalerState,
    ExecutorState,
    ScalingPlan,
    ScalingPolicy,
    WorkerLoad,
    plan_scaling,
)
from ptw.domain.ports import ExecutorRegistry, JobQueue
from ptw.executors.device import GpuLease, GpuLeases

log = logging.getLogger(__name__)


class WorkerProcess(Protocol):
    """A started ``ptw worker``: ``asyncio.subprocess.Process`` fits."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    async def wait(self) -> int: ...


# Starts a worker with these environment variables added (its GPU); returns once the process exists.
LaunchWorker = Callable[[Mapping[str, str]], Awaitable[WorkerProcess]]


@dataclass
class SupervisedWorker:
    process: WorkerProcess
    executor_prefix: str  # its slots announce themselves as ``<prefix><n>``
    started_at: float
    gpu: GpuLease | None = None
    announced: bool = False  # its slots were seen warm in the registry at least once
    idle_since: float | None = None
    draining_since: float | None = None

    @property
    def id(self) -> str:
        return str(self.process.pid)


class QueueDepthAutoscaler:
    def __init__(
        self,
        queue: JobQueue,
        registry: ExecutorRegistry,
        launch: LaunchWorker,
        policy: ScalingPolicy,
        *,
        autoscaler_id: str,
        resource_classes: Sequence[str],
        executor_prefix: Callable[[int], str],
        gpus: GpuLeases | None = None,
        interval: float = 0.25,
        startup_timeout: float = 180.0,
        drain_timeout: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue, self.registry, self.launch, self.policy = queue, registry, launch, policy
        self.id = autoscaler_id
        self.resource_classes = tuple(resource_classes)
        self.executor_prefix = executor_prefix
        self.gpus = gpus or GpuLeases([])
        self.interval = interval
        # A worker that never warms up (a broken image, a hung import) counts as idle after this long.
        self.startup_timeout = startup_timeout
        # A drain that outlasts this is killed; the reliability layer's recovery then re-queues its run.
        self.drain_timeout = drain_timeout
        self.clock = clock
        self.workers: list[SupervisedWorker] = []
        self.last_plan = ScalingPlan(policy.minimum, 0, 0)
        self._failures = 0  # workers in a row that died before warming up
        self._hold_starts_until = 0.0

    @property
    def serving(self) -> list[SupervisedWorker]:
        return [w for w in self.workers if w.draining_since is None]

    @property
    def draining(self) -> list[SupervisedWorker]:
        return [w for w in self.workers if w.draining_since is not None]

    async def run(self, stop: asyncio.Event) -> None:
        """Scale until ``stop`` is set, then drain every worker and retire the published decision."""
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception:  # Redis away, a worker that cannot start: keep what runs, look again
                    log.warning("a scaling step failed; trying again", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
        finally:
            await self.shutdown()

    async def tick(self) -> ScalingPlan:
        now = self.clock()
        self._reap(now)
        # Read in this order, a job moving from waiting to in progress meanwhile is counted twice, never
        # missed; and executors announce themselves busy after taking their job, so read them last.
        waiting_by_class = await self.queue.depth()
        in_progress = await self.queue.in_progress()
        executors = await self.registry.alive()
        loads = [self._load(worker, executors, now) for worker in self.serving]
        plan = plan_scaling(
            self.policy,
            waiting_by_class,
            self.resource_classes,
            loads,
            now,
            self._taken(in_progress, executors),
        )
        if plan.waiting:
            # A waiting run may be taken by any idle worker this very moment, before its slot says busy:
            # none of them is idle while runs wait, so none is drained with a job in its hands.
            for worker in self.serving:
                if worker.idle_since is not None:
                    worker.idle_since = now
        if plan.start and now < self._hold_starts_until:
            plan = ScalingPlan(plan.desired, plan.waiting, 0, plan.drain)
        for worker in self.serving:
            if worker.id in plan.drain:
                log.info(
                    "worker %s idle for %.1f s: draining it", worker.id, now - (worker.idle_since or now)
                )
                worker.draining_since = now
                worker.process.terminate()  # SIGTERM: the worker's graceful drain, never a kill
        for _ in range(plan.start):
            await self._start(now)
        for worker in self.draining:
            if (
                now - (worker.draining_since or now) > self.drain_timeout
                and worker.process.returncode is None
            ):
                log.warning("worker %s still drains after %.0f s: killing it", worker.id, self.drain_timeout)
                worker.process.kill()
        if plan.start or plan.drain:
            log.info(
                "%d run(s) waiting, %d running: %d worker(s) wanted, %d starting, %d draining",
                plan.waiting,
                sum(w.running for w in loads),
                plan.desired,
                plan.start,
                len(plan.drain),
            )
        self.last_plan = plan
        await self.registry.publish_autoscaler(self.state(), ttl=max(10.0, 20 * self.interval))
        return plan

    def state(self) -> AutoscalerState:
        return AutoscalerState(
            id=self.id,
            resource_classes=self.resource_classes,
            minimum=self.policy.minimum,
            maximum=self.policy.maximum,
            workers=len(self.serving),
            draining=len(self.draining),
            desired=self.last_plan.desired,
            waiting=self.last_plan.waiting,
            seen_at=utcnow(),
            gpus=len(self.gpus.gpus),
        )

    async def shutdown(self) -> None:
        """SIGTERM every worker (each drains: its runs go back to the queue), wait, kill what outlasts it."""
        for worker in self.workers:
            if worker.process.returncode is None:
                worker.process.terminate()
        waits = [asyncio.ensure_future(w.process.wait()) for w in self.workers]
        if waits:
            _, late = await asyncio.wait(waits, timeout=self.drain_timeout)
            for worker in self.workers:
                if worker.process.returncode is None:
                    log.warning(
                        "worker %s did not drain within %.0f s: killing it", worker.id, self.drain_timeout
                    )
                    worker.process.kill()
            if late:
                await asyncio.wait(late, timeout=10)
        self.workers = []
        with contextlib.suppress(Exception):
            await self.registry.retire_autoscaler(self.id)

    async def _start(self, now: float) -> None:
        gpu = self.gpus.lease()
        try:
            process = await self.launch(gpu.env() if gpu is not None else {})
        except Exception:
            if gpu is not None:
                gpu.release()
            raise
        if gpu is not None:
            gpu.holder = process
        self.workers.append(SupervisedWorker(process, self.executor_prefix(process.pid), now, gpu))
        log.info("started worker %s%s", process.pid, f" on GPU {gpu.gpu.index}" if gpu is not None else "")

    def _reap(self, now: float) -> None:
        """Forget the workers that exited; one that died unasked before warming up delays the next starts."""
        for worker in [w for w in self.workers if w.process.returncode is not None]:
            self.workers.remove(worker)
            if worker.draining_since is not None:
                log.info("worker %s drained in %.1f s", worker.id, now - worker.draining_since)
                continue
            log.warning("worker %s exited by itself (status %s)", worker.id, worker.process.returncode)
            if not worker.announced:
                self._failures += 1
                self._hold_starts_until = now + min(30.0, 2.0 ** (self._failures - 1))

    def _taken(self, in_progress: Mapping[str, int], executors: Sequence[ExecutorState]) -> int:
        """Jobs taken by an executor that does not say busy yet: between arq handing a job to a worker
        and its slot claiming it, the slot may be starting a fresh child for seconds. Busy executors
        elsewhere that serve these classes count against it too, so with other workers on the same
        queues it may come out low: a worker drained then hands its run back (the graceful drain)."""
        served = set(self.resource_classes)
        taken = sum(in_progress.get(rc, 0) for rc in served)
        busy = sum(1 for e in executors if e.busy and served.intersection(e.resource_classes))
        return max(0, taken - busy)

    def _load(self, worker: SupervisedWorker, executors: Sequence[ExecutorState], now: float) -> WorkerLoad:
        slots = [e for e in executors if e.id.startswith(worker.executor_prefix)]
        running = sum(1 for e in slots if e.busy)
        if slots and not worker.announced:
            worker.announced, self._failures = True, 0
        if running:
            worker.idle_since = None
        elif worker.idle_since is None and (
            worker.announced or now - worker.started_at > self.startup_timeout
        ):
            worker.idle_since = now
        return WorkerLoad(worker.id, running, worker.idle_since)
