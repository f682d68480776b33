"""The job queue of production mode: arq on Redis, one queue per resource class, idempotent per attempt,
and fair between projects.

arq's workers take the job of lowest score first, and a score is normally the time of enqueueing, so 200
runs of one project would all go before another project's next one. Here a job's score is a virtual
time instead (start-time fair queuing): a project's next job starts at the later of the queue's head and
its own previous job's finish, and finishes one slot later. Projects thus take turns, each in its own
order. Scores are slots counted from 1970 in milliseconds, from 1 (arq skips a score of 0), so every
score is in the past: nothing is ever deferred, and a worker with nothing else to do takes whatever
waits (arq's log then calls each job 'delayed' by decades: a score is no enqueue time any more).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis

from ptw.domain.runs import RunJob
from ptw.infra import redis_keys

RESOURCE_CLASSES = ("cpu", "gpu")
RUN_FUNCTION = "run_attempt"  # the arq function name that `ptw worker` registers
# A job that waits this long has no executor that can run it; `requeue_waiting` enqueues it again.
JOB_EXPIRES = timedelta(days=7)

# KEYS: the class's queue (arq's sorted set), the projects' finishes (a hash); ARGV: the project.
_FAIR_START = """
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local now = tonumber(head[2] or '1')
local start = math.max(now, tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '1'))
redis.call('HSET', KEYS[2], ARGV[1], tostring(start + 1))
return tostring(start)
"""


class ArqJobQueue:
    """Enqueues ``(run_id, attempt)`` only: the worker claims the rest from PostgreSQL (the truth)."""

    def __init__(self, redis: Redis, prefix: str, resource_classes: Sequence[str] = RESOURCE_CLASSES) -> None:
        # arq's client is a thin subclass of redis-py's; it shares the connections of the service's client.
        self.arq = ArqRedis(redis.connection_pool)
        self.prefix = prefix
        self.resource_classes = tuple(resource_classes)
        self._fair_start = redis.register_script(_FAIR_START)

    def queue_name(self, resource_class: str) -> str:
        return redis_keys.run_queue(self.prefix, resource_class)

    async def enqueue(self, job: RunJob) -> None:
        # arq refuses a job id it already holds (waiting, running or with a kept result): a no-op,
        # which spends one slot of the project's virtual time, and that only delays its own jobs.
        queue = self.queue_name(job.resource_class)
        turns = redis_keys.run_queue_turns(self.prefix, job.resource_class)
        start = await self._fair_start(keys=[queue, turns], args=[job.project_id])
        if job.resource_class not in self.resource_classes:  # a pool's class: counted from now on
            await self.arq.sadd(redis_keys.run_queue_classes(self.prefix), job.resource_class)
        await self.arq.enqueue_job(
            RUN_FUNCTION,
            job.run_id,
            job.attempt,
            nodes=job.resources.nodes,  # a single-node job starts without reading the run first
            _job_id=redis_keys.run_job_id(self.prefix, job.run_id, job.attempt),
            _queue_name=queue,
            _expires=JOB_EXPIRES,
            _defer_until=datetime.fromtimestamp(int(start) / 1000, UTC),
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
        pools = await self.arq.smembers(redis_keys.run_queue_classes(self.prefix))
        classes = [*self.resource_classes, *sorted({p.decode() for p in pools} - set(self.resource_classes))]
        for rc in classes:
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
