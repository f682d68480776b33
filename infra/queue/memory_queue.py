"""The in-process job queue of embedded mode, per resource class, idempotent per (run, attempt), and fair
between projects: each class serves its projects in turn (round robin), each project's jobs in order, so
one project's long backlog cannot keep another's next run waiting behind all of it."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Sequence

from ptw.domain.runs import RunJob


class FairLine:
    """The waiting jobs of one resource class: the next job is the oldest of the project whose turn it is,
    and that project then goes to the back of the line."""

    def __init__(self) -> None:
        self._by_project: OrderedDict[str, deque[RunJob]] = OrderedDict()
        self._size = 0

    def put(self, job: RunJob) -> None:
        self._by_project.setdefault(job.project_id, deque()).append(job)
        self._size += 1

    def pop(self) -> RunJob | None:
        if not self._by_project:
            return None
        project, jobs = self._by_project.popitem(last=False)
        job = jobs.popleft()
        self._size -= 1
        if jobs:
            self._by_project[project] = jobs
        return job

    def __len__(self) -> int:
        return self._size


class InMemoryJobQueue:
    def __init__(self) -> None:
        self._lines: dict[str, FairLine] = {}
        self._changed = asyncio.Condition()
        self._known: set[tuple[str, int]] = set()
        self._taken: dict[tuple[str, int], str] = {}  # taken and not forgotten yet: in progress

    def _line(self, resource_class: str) -> FairLine:
        return self._lines.setdefault(resource_class, FairLine())

    async def enqueue(self, job: RunJob) -> None:
        ident = (job.run_id, job.attempt)
        if ident in self._known:
            return
        self._known.add(ident)
        self._line(job.resource_class).put(job)
        async with self._changed:
            self._changed.notify_all()

    async def take(self, resource_classes: Sequence[str] = ("cpu",)) -> RunJob:
        """Wait for the next job of any of the resource classes an executor can run."""
        async with self._changed:
            while True:
                for rc in resource_classes:
                    job = self._line(rc).pop()
                    if job is not None:
                        self._taken[(job.run_id, job.attempt)] = job.resource_class
                        return job
                await self._changed.wait()

    def forget(self, run_id: str, attempt: int) -> None:
        """Once an attempt is done its key can go; re-enqueueing it again is then a new delivery."""
        self._known.discard((run_id, attempt))
        self._taken.pop((run_id, attempt), None)

    async def depth(self) -> dict[str, int]:
        return {rc: len(line) for rc, line in self._lines.items()}

    async def in_progress(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource_class in self._taken.values():
            counts[resource_class] = counts.get(resource_class, 0) + 1
        return counts
