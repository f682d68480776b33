"""The executor of ``ptw worker``: arq consumers, one per resource class, feeding warm executor slots.

Each job is only ``(run_id, attempt)``: the slot claims the attempt through ``ExecutionService`` (a stale
or duplicate delivery claims nothing) and supervises it with the same ``RunSupervisor`` as embedded mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.worker import Retry, Worker, func

from ptw.domain.retry import every
from ptw.executors.gang import NODE_FUNCTION, WAIT_RETRY, Gang, NotPlaced
from ptw.executors.slots import QUOTA_RETRY, ClaimDeferred, ClaimFailed, ExecutorSlot, SlotServices

log = logging.getLogger(__name__)

# arq cancels a job after its timeout; runs have their own (supervised) timeout, so arq's must not bite.
ARQ_JOB_TIMEOUT = timedelta(days=30)
# arq marks a job in progress for the whole job timeout; a job renews a short mark instead, so the job of
# a worker that died becomes visible again within this time (its delivery then claims nothing).
IN_PROGRESS_TTL = 60.0
# A finished job's id stays taken for a while (enqueuing it again is a no-op), then may be enqueued anew:
# a run left QUEUED by a job that gave up is enqueued again by the queue reconciliation.
KEEP_RESULT = timedelta(minutes=5)
CLAIM_TRIES = 5  # deliveries of a job whose claim the database refused, before it is left to reconciliation
MAX_DELIVERIES = 1_000_000_000
OnInterrupted = Callable[[list[str]], Awaitable[object]]


class PromptWorker(Worker):
    """arq's Worker, whose poll loop also wakes when a job of this executor ends, instead of sleeping out
    its poll delay with a slot free: the runs of a burst, queued behind busy slots, start the moment a slot
    can take them. (arq polls only while it has room: with every slot busy it sleeps ``poll_delay`` and
    looks again.) ``wakes`` are the events of every Worker sharing these slots."""

    def __init__(self, *args: Any, wakes: list[asyncio.Event], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wake = asyncio.Event()
        self.wakes = wakes
        wakes.append(self.wake)

    async def main(self) -> None:
        # arq's main, with its poll() replaced (the pool is given: nothing to create, no start-up hook).
        self.ctx["redis"] = self.pool
        while True:
            self.wake.clear()
            await self._poll_iteration()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.poll_delay_s)

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        for wake in self.wakes:
            wake.set()


class ExecutorWorker:
    """Slots (one warm runner each) shared by one arq ``Worker`` per resource class they can serve."""

    def __init__(
        self,
        services: SlotServices,
        redis: ArqRedis,
        queue_names: Mapping[str, str],
        function_name: str,
        *,
        slots: int = 1,
        name: str,
        poll_delay: float = 0.02,
        heartbeat_interval: float = 5.0,
        drain_grace: float = 20.0,
        on_interrupted: OnInterrupted | None = None,
    ) -> None:
        self.services = services
        self.redis = redis
        self.queue_names = dict(queue_names)
        self.function_name = function_name
        self.poll_delay = poll_delay
        self.heartbeat_interval = heartbeat_interval
        self.drain_grace = drain_grace
        self.on_interrupted = on_interrupted
        self.slots = [ExecutorSlot(services, f"{name}-{i}") for i in range(slots)]
        self.workers: list[Worker] = []
        self._free: asyncio.Queue[ExecutorSlot] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def resource_classes(self) -> tuple[str, ...]:
        return tuple(sorted({rc for slot in self.slots for rc in slot.resource_classes}))

    async def start(self) -> None:
        """Warm every slot first (their device decides which queues this worker consumes), then poll."""
        self.services.artifacts_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.gather(*(slot.ready() for slot in self.slots))
        for slot in self.slots:
            self._free.put_nowait(slot)
        # One gate over all queues: arq counts jobs per Worker, but the slots are shared by the classes.
        gate = asyncio.BoundedSemaphore(len(self.slots))
        wakes: list[asyncio.Event] = []
        for rc in self.resource_classes:
            worker = PromptWorker(
                wakes=wakes,
                functions=[
                    func(self._run_attempt, name=self.function_name),
                    func(self._run_node, name=NODE_FUNCTION),
                ],
                queue_name=self.queue_names[rc],
                redis_pool=self.redis,
                handle_signals=False,  # `ptw worker` stops this executor itself, re-queuing what it cut
                max_jobs=len(self.slots),
                poll_delay=self.poll_delay,
                job_timeout=ARQ_JOB_TIMEOUT,
                keep_result=KEEP_RESULT,
                # Deliveries of one attempt: unbounded for arq, since a run waiting for its project's
                # running-runs quota or for its gang is delivered again until it starts; failed claims stop
                # at CLAIM_TRIES.
                max_tries=MAX_DELIVERIES,
                health_check_interval=60,
            )
            worker.sem = gate  # arq acquires it per job it starts and releases it when the job ends
            self.workers.append(worker)
            self._tasks.append(asyncio.create_task(worker.main(), name=f"arq-{rc}"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="executor-heartbeat"))
        probes = self.services.answer_probes(self.slots)
        self._tasks.append(asyncio.create_task(probes, name="entrypoint-probes"))
        log.info("worker consumes %s with %d slot(s)", ", ".join(self.resource_classes), len(self.slots))

    async def stop(self, grace: float | None = None) -> list[str]:
        """Drain: stop taking jobs, tell the runs in progress (``ctx.stopping``), give them ``grace``
        seconds (default ``drain_grace``) to checkpoint and return, then stop what still runs. Each run is
        handed back to the queue as its next attempt without counting a failure. Runs whose hand-back did
        not happen (their supervisor could not end in time) go to ``on_interrupted``, the recovery of lost
        executors. Returns the ids of the runs that were in progress."""
        grace = self.drain_grace if grace is None else grace
        stopped = [slot.run_id for slot in self.slots if slot.run_id]
        for worker in self.workers:
            worker.allow_pick_jobs = False
        self._stopping.set()
        for slot in self.slots:
            slot.drain()
        jobs = [task for worker in self.workers for task in worker.tasks.values() if not task.done()]
        if jobs:
            await asyncio.wait(jobs, timeout=grace)
        for slot in self.slots:
            slot.end_drain()
        if jobs:  # cancel word, SIGTERM and SIGKILL each get their grace, then the hand-back is written
            limits = self.services.limits
            await asyncio.wait(jobs, timeout=limits.cancel_grace + 2 * limits.kill_grace + 10.0)
        interrupted = [slot.run_id for slot in self.slots if slot.run_id]
        for task in [*self._tasks, *jobs]:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        for slot in self.slots:  # whatever did not stop in time is killed outright
            slot.kill()
            await slot.close()
            with contextlib.suppress(Exception):
                await self.services.registry.leave(slot.id)
        for worker in self.workers:
            with contextlib.suppress(Exception):
                await self.redis.delete(worker.health_check_key)
        self._tasks, self.workers = [], []
        if interrupted and self.on_interrupted is not None:
            await self.on_interrupted(interrupted)
        return list(dict.fromkeys([*stopped, *interrupted]))

    async def _run_attempt(
        self, ctx: dict[str, Any], run_id: str, attempt: int, nodes: int | None = None
    ) -> bool:
        """The arq job: True when the attempt ran here (to its end, or handed back by a drain), False when
        the delivery was stale or a duplicate. ``nodes``: the run's, given at enqueue (a job enqueued
        without it is looked up: a multi-node run needs its gang before the claim)."""
        slot = await self._free.get()
        if self._stopping.is_set():  # picked just before the drain began: leave it to another worker
            self._free.put_nowait(slot)
            raise Retry(defer=0)
        renewal = asyncio.create_task(self._renew_in_progress(str(ctx["job_id"])))
        try:
            if nodes == 1:
                return await slot.execute(run_id, attempt)
            job = await self.services.execution.node_job(run_id, attempt, claimed=False)
            if job is not None and job.resources.nodes > 1:
                gang = self._gang(job.resource_class)
                return await slot.execute(run_id, attempt, gang, job.resources.nodes)
            return await slot.execute(run_id, attempt)
        except ClaimDeferred as exc:
            log.info("%s; delivering it again in %.0f s", exc, QUOTA_RETRY)
            raise Retry(defer=QUOTA_RETRY) from exc
        except NotPlaced as exc:
            log.info("run %s attempt %s waits for its gang: %s", run_id, attempt, exc)
            raise Retry(defer=WAIT_RETRY) from exc
        except ClaimFailed as exc:
            if int(ctx.get("job_try", 1)) >= CLAIM_TRIES:
                log.error(
                    "%s; giving up after %d tries (the queue reconciliation enqueues it again)",
                    exc,
                    CLAIM_TRIES,
                )
                return False
            log.warning("%s; delivering it again", exc)
            raise Retry(defer=1) from exc
        finally:
            renewal.cancel()
            self._free.put_nowait(slot)
            if not self._stopping.is_set():
                slot.prewarm()  # the next job should find torch imported

    async def _run_node(
        self,
        ctx: dict[str, Any],
        run_id: str,
        attempt: int,
        rank: int,
        endpoint: str,
        token: str,
        resource_class: str,
    ) -> bool:
        """A node job of a multi-node run (executors/gang.py): this worker's slot joins the gang."""
        slot = await self._free.get()
        try:
            if self._stopping.is_set():
                return False  # the gang is called off for want of this node, and tries again
            gang = self._gang(resource_class)
            return await slot.execute_node(gang, run_id, attempt, rank, endpoint, token)
        finally:
            self._free.put_nowait(slot)
            if not self._stopping.is_set():
                slot.prewarm()

    def _gang(self, resource_class: str) -> Gang:
        return Gang(self.redis, self.queue_names[resource_class], self.services.registry, resource_class)

    async def _renew_in_progress(self, job_id: str) -> None:
        key = in_progress_key_prefix + job_id
        ttl_ms = int(IN_PROGRESS_TTL * 1000)
        renew = f"renew the in-progress mark of {job_id}"
        await every(IN_PROGRESS_TTL / 3, lambda: self.redis.pexpire(key, ttl_ms), renew, log, at_once=True)

    async def _heartbeat(self) -> None:
        await every(self.heartbeat_interval, self._announce, "announce the slots", log, at_once=True)

    async def _announce(self) -> None:
        for slot in self.slots:
            await slot.announce()
