"""The in-process job queue of embedded mode, per resource class, idempotent per (run, attempt)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ptw.domain.runs import RunJob


class InMemoryJobQueue:
    def __init__(self) -> None:
        self._queues: dict[str, asyncio.Queue[RunJob]] = {}
        self._known: set[tuple[str, int]] = set()
        self._taken: dict[tuple[str, int], str] = {}  # taken and not forgotten yet: in progress

    def _queue(self, resource_class: str) -> asyncio.Queue[RunJob]:
        return self._queues.setdefault(resource_class, asyncio.Queue())

    async def enqueue(self, job: RunJob) -> None:
        ident = (job.run_id, job.attempt)
        if ident in self._known:
            return
        self._known.add(ident)
        await self._queue(job.resource_class).put(job)

    async def take(self, resource_classes: Sequence[str] = ("cpu",)) -> RunJob:
        """Wait for the next job of any of the resource classes an executor can run."""
        while True:
            for rc in resource_classes:
                queue = self._queue(rc)
                if not queue.empty():
                    return self._took(queue.get_nowait())
            if len(resource_classes) == 1:
                return self._took(await self._queue(resource_classes[0]).get())
            waiters = [asyncio.ensure_future(self._queue(rc).get()) for rc in resource_classes]
            done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()
            first, *extra = [w.result() for w in done]
            for job in extra:  # more than one finished at once: queue the others again
                self._queue(job.resource_class).put_nowait(job)
            return self._took(first)

    def _took(self, job: RunJob) -> RunJob:
        self._taken[(job.run_id, job.attempt)] = job.resource_class
        return job

    def forget(self, run_id: str, attempt: int) -> None:
        """Once an attempt is done its key can go; re-enqueueing it again is then a new delivery."""
        self._known.discard((run_id, attempt))
        self._taken.pop((run_id, attempt), None)

    async def depth(self) -> dict[str, int]:
        return {rc: q.qsize() for rc, q in self._queues.items()}

    async def in_progress(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource_class in self._taken.values():
            counts[resource_class] = counts.get(resource_class, 0) + 1
        return counts
