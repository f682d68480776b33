"""The job queue of production mode: arq on Redis, one queue per resource class, idempotent per attempt."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis

from ptw.domain.runs import RunJob
from ptw.infra import redis_keys

RESOURCE_CLASSES = ("cpu", "gpu")
RUN_FUNCTION = "run_attempt"  # the arq function name that `ptw worker` registers
# A job that waits this long has no executor that can run it; `requeue_waiting` enqueues it again.
JOB_EXPIRES = timedelta(days=7)


class ArqJobQueue:
    """Enqueues ``(run_id, attempt)`` only: the worker claims the rest from PostgreSQL (the truth)."""

    def __init__(self, redis: Redis, prefix: str, resource_classes: Sequence[str] = RESOURCE_CLASSES) -> None:
        # arq's client is a thin subclass of redis-py's; it shares the connections of the service's client.
        self.arq = ArqRedis(redis.connection_pool)
        self.prefix = prefix
        self.resource_classes = tuple(resource_classes)

    def queue_name(self, resource_class: str) -> str:
        return redis_keys.run_queue(self.prefix, resource_class)

    async def enqueue(self, job: RunJob) -> None:
        # arq refuses a job id it already holds (waiting, running or with a kept result): a no-op.
        await self.arq.enqueue_job(
            RUN_FUNCTION,
            job.run_id,
            job.attempt,
            _job_id=redis_keys.run_job_id(self.prefix, job.run_id, job.attempt),
            _queue_name=self.queue_name(job.resource_class),
            _expires=JOB_EXPIRES,
        )

    async def depth(self) -> dict[str, int]:
        """Jobs waiting per class. arq keeps a running job in its queue until it ends, so those with an
        in-progress key are not counted: they show as busy executors instead."""
        return {rc: waiting for rc, (waiting, _) in (await self._counts()).items()}

    async def in_progress(self) -> dict[str, int]:
        """Jobs an executor took and has not finished, per class (its slot may still be warming up)."""
        return {rc: running for rc, (_, running) in (await self._counts()).items()}

    async def _counts(self) -> dict[str, tuple[int, int]]:
        """(waiting, in progress) per class."""
        counts: dict[str, tuple[int, int]] = {}
        for rc in self.resource_classes:
            job_ids = await self.arq.zrange(self.queue_name(rc), 0, -1)
            if not job_ids:
                counts[rc] = (0, 0)
                continue
            async with self.arq.pipeline(transaction=False) as pipe:
                for job_id in job_ids:
                    pipe.exists(in_progress_key_prefix + job_id.decode())
                running = sum(await pipe.execute())
            counts[rc] = (len(job_ids) - running, running)
        return counts
