"""Following a run's metrics: stored batches after a cursor, then live ones; no gap, no duplicate.

Two live sources, one per mode:

- embedded: the event bus. It is subscribed to *before* storage is read, so a batch committed while
  replaying is either in the replay or buffered in the subscription; seqs are contiguous there, so a
  batch that overtook another is noticed and the missing one read from storage.
- production: the metric log (a Redis stream per run). Its seqs are not contiguous, so a hole cannot be
  seen from the seqs alone; the log says instead below which seq it was trimmed, and trimming only
  ever drops batches already stored. So whatever lies between the cursor and the first batch read is
  either nothing or in storage: the follower reads storage for exactly that range, then the batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeAlias

from ptw.domain.events import MetricsRecorded, RunChanged, run_topic
from ptw.domain.metrics import MetricBatch, merged
from ptw.domain.ports import EventBus, LogRead, MetricLog, Subscription, UnitOfWorkFactory

# A batch with only the wanted series; its seq is the subscriber's cursor.
Delivery: TypeAlias = MetricBatch
# Stored batches of the run: (after_seq, keys, before_seq) -> batches in seq order.
StoredAfter = Callable[[int, Sequence[str] | None, int | None], Awaitable[list[MetricBatch]]]

# How long one read of the log waits for a batch before the follower looks at the run again: a run
# ending is noticed from the bus at once, this only bounds how long that takes when the event was lost.
LOG_BLOCK_MS = 1000
LOG_READ_COUNT = 200
RUN_CHECK_SECONDS = 5.0


class MetricFollow:
    """One subscriber's position in a run's metrics; ``batches`` yields them once each, in seq order."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        bus: EventBus,
        log: MetricLog | None,
        run_id: str,
        keys: Sequence[str] | None,
        stored_after: StoredAfter,
    ) -> None:
        self.uow, self.bus, self.log, self.stored_after = uow, bus, log, stored_after
        self.run_id = run_id
        self.keys = frozenset(keys) if keys else None
        self.last_seq = 0

    async def batches(self, after_seq: int = 0) -> AsyncIterator[Delivery]:
        """Batches (with only the series of ``keys``) of a higher seq than the last one yielded.

        Ends once the run is finished and everything it logged was yielded; otherwise runs until the
        caller stops it. Access to the run is the caller's to check, before this starts."""
        self.last_seq = after_seq
        async with self.bus.subscribe([run_topic(self.run_id)]) as live:
            source = self._from_bus(live) if self.log is None else self._from_log(self.log, live)
            async for delivery in source:
                yield delivery

    async def _run_finished(self) -> bool:
        async with self.uow() as uow:
            run = await uow.runs.get(self.run_id)
        return run is None or run.status.terminal

    # --- embedded: the bus -----------------------------------------------------------------------------

    async def _from_bus(self, live: Subscription) -> AsyncIterator[Delivery]:
        # Read after subscribing: a run finishing from now on is seen on the bus.
        finished = await self._run_finished()
        async for delivery in self._replay():
            yield delivery
        if finished:
            return
        async for event in live:
            if isinstance(event, MetricsRecorded):
                async for delivery in self._live(event.batch):
                    yield delivery
            elif isinstance(event, RunChanged) and event.run.status.terminal:
                # Batches stored before the run finished may still be on their way: drain storage.
                async for delivery in self._replay():
                    yield delivery
                return

    async def _live(self, batch: MetricBatch) -> AsyncIterator[Delivery]:
        if batch.seq <= self.last_seq:
            return
        if batch.seq > self.last_seq + 1:
            # Publications of one run may overtake each other; storage has whatever was skipped.
            async for delivery in self._replay():
                yield delivery
            if batch.seq <= self.last_seq:
                return
        fresh = self._advance(batch)
        if fresh is not None:
            yield fresh

    # --- production: the metric log --------------------------------------------------------------------

    async def _from_log(self, log: MetricLog, live: Subscription) -> AsyncIterator[Delivery]:
        finished = asyncio.Event()
        watcher = asyncio.create_task(_watch_for_end(live, finished))
        try:
            if await self._run_finished():  # read after subscribing, like the bus follower
                finished.set()
            checked_at = time.monotonic()
            while True:
                # Everything the run logged was appended before it finished: once that is known, the
                # next read that finds nothing new means the log is drained.
                ending = finished.is_set()
                read = await log.read_after(
                    self.run_id, self.last_seq, None if ending else LOG_BLOCK_MS, LOG_READ_COUNT
                )
                # One delivery per read: a subscriber that fell behind catches up in one message
                # instead of one per batch, so a busy replica sheds work instead of falling further back.
                taken = [d async for d in self._take(read)]
                if taken:
                    yield merged(taken)
                if ending and not read.batches:
                    # A stream retired after the run was stored leaves no trim mark: storage has it all.
                    async for delivery in self._replay():
                        yield delivery
                    return
                if not ending and time.monotonic() - checked_at > RUN_CHECK_SECONDS:
                    checked_at = time.monotonic()
                    if await self._run_finished():  # in case the bus lost the run's last change
                        finished.set()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _take(self, read: LogRead) -> AsyncIterator[Delivery]:
        first = read.batches[0].seq if read.batches else read.trimmed_below
        if read.trimmed_below > self.last_seq + 1 and first > self.last_seq + 1:
            # Batches after the cursor were trimmed before this read: they are stored. Storage is read
            # only below ``first``, since batches above it may still be on their way there.
            async for stored in self._replay(before_seq=first):
                yield stored
            self.last_seq = max(self.last_seq, first - 1)
        for batch in read.batches:
            delivery = self._advance(batch)
            if delivery is not None:
                yield delivery

    # --- both -----------------------------------------------------------------------------------------

    async def _replay(self, before_seq: int | None = None) -> AsyncIterator[Delivery]:
        keys = sorted(self.keys) if self.keys else None
        for batch in await self.stored_after(self.last_seq, keys, before_seq):
            delivery = self._advance(batch)
            if delivery is not None:
                yield delivery

    def _advance(self, batch: MetricBatch) -> Delivery | None:
        """Move the cursor past ``batch``; None when no point of it is wanted (the cursor still moves)."""
        if batch.seq <= self.last_seq:
            return None
        self.last_seq = batch.seq
        wanted = batch.only(self.keys)
        return wanted if wanted.series else None


async def _watch_for_end(live: Subscription, finished: asyncio.Event) -> None:
    """Set ``finished`` when the bus says the run reached a terminal status."""
    with contextlib.suppress(Exception):  # a bus that fails leaves the periodic check to notice the end
        async for event in live:
            if isinstance(event, RunChanged) and event.run.status.terminal:
                finished.set()
                return
