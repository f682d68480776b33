"""One reader of a run's metric log per process, shared by every subscriber of that run on the replica.

Without it each subscriber blocks on its own XREAD and decodes every batch again: with 50 subscribers of a
run, a replica does 50 times the Redis and decoding work and falls seconds behind. A tail task per run reads
the log once, keeps the recent batches in memory, and wakes the subscribers waiting for them. A subscriber
whose cursor is older than what the tail holds (it is catching up on history) reads the log itself.

Completeness: the tail reads every entry after the seq it started from (``floor``), in order, so for a cursor
at or above ``floor`` the buffered batches above the cursor are all there is; such reads report no trimming.
If the tail ever finds entries trimmed before it read them, it starts over from its new position with an
empty buffer, and readers below it fall back to the log (which handles trimmed holes through storage).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import contextvars
import logging
from collections.abc import Sequence
from operator import attrgetter

from ptw.domain.metrics import MetricBatch, Series
from ptw.domain.ports import LogRead, MetricLog

log = logging.getLogger(__name__)

TAIL_BLOCK_MS = 1000
TAIL_READ_COUNT = 500
BUFFERED_BATCHES = 2000
IDLE_SECONDS = 30.0


class _Tail:
    """The recent batches of one run, read once for all of its subscribers."""

    def __init__(self, source: MetricLog, run_id: str, floor: int) -> None:
        self.source, self.run_id = source, run_id
        self.floor = floor  # every batch of a higher seq that the log held is in ``batches``
        self.batches: list[MetricBatch] = []
        self.changed = asyncio.Event()
        self.readers = 0
        self.idle_since: float | None = None
        # A context of its own: not the first reader's (which may hold that subscriber's connection).
        self.task = asyncio.create_task(
            self._follow(), name=f"ptw-log-tail-{run_id}", context=contextvars.Context()
        )

    @property
    def last(self) -> int:
        return self.batches[-1].seq if self.batches else self.floor

    async def _follow(self) -> None:
        while True:
            try:
                read = await self.source.read_after(self.run_id, self.last, TAIL_BLOCK_MS, TAIL_READ_COUNT)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away: readers wait, then fall back to reading the log themselves
                log.warning("metric log tail of run %s failed; retrying", self.run_id, exc_info=True)
                await asyncio.sleep(0.5)
                continue
            first = read.batches[0].seq if read.batches else read.trimmed_below
            # No await from here to the wake-up: readers see the buffer either before or after the change.
            if read.trimmed_below > self.last + 1 and first > self.last + 1:
                # Entries after our position were trimmed before we read them: start over above them.
                self.batches, self.floor = [], first - 1
            self.batches.extend(read.batches)
            if len(self.batches) > BUFFERED_BATCHES:
                dropped = self.batches[: len(self.batches) - BUFFERED_BATCHES]
                self.batches = self.batches[len(dropped) :]
                self.floor = dropped[-1].seq
            if read.batches:
                # Wakes every reader waiting now (each its own future, no lock to take in turn).
                self.changed.set()
                self.changed.clear()

    def after(self, seq: int, count: int) -> list[MetricBatch]:
        # batches are in ascending seq: a search, not a scan of up to BUFFERED_BATCHES per subscriber
        start = bisect.bisect_right(self.batches, seq, key=attrgetter("seq"))
        return self.batches[start : start + count]


class SharedLogReader:
    """A ``MetricLog`` whose reads of a run's recent batches are shared within the process."""

    def __init__(self, source: MetricLog) -> None:
        self.source = source
        self._tails: dict[str, _Tail] = {}
        self._swept = 0.0

    async def append(self, run_id: str, series: Sequence[Series]) -> int:
        return await self.source.append(run_id, series)

    async def trim(self, run_id: str, upto_seq: int) -> None:
        await self.source.trim(run_id, upto_seq)

    async def read_after(
        self, run_id: str, after_seq: int, block_ms: int | None = None, count: int = 100
    ) -> LogRead:
        if not block_ms:
            # A reader that does not wait is checking the log is drained (its run ended): only the log
            # itself can say so, since the tail may be a few milliseconds behind it.
            return await self.source.read_after(run_id, after_seq, block_ms, count)
        tail = self._tails.get(run_id)
        if tail is None:
            tail = self._tails[run_id] = _Tail(self.source, run_id, floor=after_seq)
        if after_seq < tail.floor:
            return await self.source.read_after(run_id, after_seq, block_ms, count)
        tail.readers += 1
        try:
            found = tail.after(after_seq, count)
            if not found:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(block_ms / 1000):  # a timer, not a task as wait_for makes
                        while not found:
                            await tail.changed.wait()
                            found = tail.after(after_seq, count)
                found = found or tail.after(after_seq, count)  # a wake-up in the turn the timer fired
            if after_seq < tail.floor:  # the tail started over while we waited: read the log ourselves
                return await self.source.read_after(run_id, after_seq, None, count)
            return LogRead(batches=found, trimmed_below=0)
        finally:
            tail.readers -= 1
            self._forget_idle(run_id, tail)

    def _forget_idle(self, run_id: str, tail: _Tail) -> None:
        loop = asyncio.get_running_loop()
        if tail.readers:
            tail.idle_since = None
            return
        if tail.idle_since is None:
            tail.idle_since = loop.time()
        if loop.time() - self._swept < 1.0:  # a run's followers pass here on every batch: sweep seldom
            return
        self._swept = loop.time()
        # Followers come back within a read or two; a tail left unread this long has no followers.
        for rid, other in list(self._tails.items()):
            if other.readers == 0 and other.idle_since and loop.time() - other.idle_since > IDLE_SECONDS:
                other.task.cancel()
                del self._tails[rid]

    async def close(self) -> None:
        for tail in self._tails.values():
            tail.task.cancel()
        for tail in self._tails.values():
            with contextlib.suppress(asyncio.CancelledError):
                await tail.task
        self._tails.clear()
