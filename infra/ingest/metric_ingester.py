"""The metric ingester: moves batches from the runs' metric streams into PostgreSQL, in bulk, at least once.

Any number of ingesters (one per ``ptw worker`` and ``ptw serve``) share the consumer group ``ingest`` of
every active run stream, so each entry is given to one of them. A round reads many entries of all the
streams, stores them in ONE transaction (``MetricService.ingest``: one COPY), and only after the commit
acknowledges them and trims the streams. A round that fails (PostgreSQL down, or its transaction lost to
another ingester's in a deadlock) acknowledges nothing: the entries stay pending under this consumer and
are read again (``XREADGROUP ... 0``) with a growing pause; entries left pending by an ingester that died
are claimed by another after ``claim_idle_ms``.
Storing an entry twice (a crash between commit and acknowledgement) is harmless: points are upserted.
An entry that cannot be stored (unreadable, refused by the domain's checks or by the database while other
entries are stored) is set aside with its reason (``set_aside``) and acknowledged: it never blocks the rest.

The trim rule. A stream is trimmed below the lowest entry that is not yet stored: below the group's
lowest pending entry, or past its last delivered one when none is pending (everything delivered and
acknowledged is committed). Followers rely on exactly that: whatever is gone from the stream is in
PostgreSQL, and the trim mark (set with the trim, in one script) tells them when to look there (see
``domain/services/metric_follow``). On top of that, entries younger than ``trim_lag_ms`` are kept while
the run is going, so a follower near the head (every live subscriber, and one that replays from
PostgreSQL and then switches to the stream) finds what it needs in Redis and never has to go back to
PostgreSQL for a batch trimmed under its feet; a finished run's stream is trimmed to empty and retired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from ptw.domain.errors import DomainError
from ptw.domain.metrics import MetricBatch, checked
from ptw.domain.retry import Backoff
from ptw.domain.services import MetricService
from ptw.infra.ingest.set_aside import SetAside
from ptw.infra.live.redis_metric_log import SEQ_BITS, RedisMetricLog, decode_batch, seq_of

log = logging.getLogger(__name__)

GROUP = "ingest"
BACKOFF = Backoff(first=0.1, limit=5.0)

Entry = tuple[str, Any, Any]  # run id, entry id, fields (None: the entry is gone)


class MetricIngester:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        metrics: MetricService,
        *,
        consumer: str | None = None,
        count: int = 200,
        round_points: int = 20_000,
        block_ms: int = 50,
        claim_idle_ms: int = 30_000,
        trim_lag_ms: int = 5_000,
        sweep_seconds: float = 2.0,
    ) -> None:
        self.redis, self.metrics = redis, metrics
        self.log = RedisMetricLog(redis, prefix)
        self.set_aside = SetAside(redis, prefix)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.count, self.block_ms = count, block_ms
        self.round_points = round_points
        self._entry_points = 1.0  # points per entry lately (a moving average)
        self.claim_idle_ms, self.trim_lag_ms, self.sweep_seconds = claim_idle_ms, trim_lag_ms, sweep_seconds
        self.stored_points = 0  # by this ingester, since it was made
        self._grouped: set[str] = set()
        self._own_pending = True  # a consumer name may have been used before: read its pending first
        self._claimed_at = self._swept_at = 0.0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=f"metric-ingester-{self.consumer}")

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the round in progress (its entries are stored and acknowledged, or left pending)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(task, grace)
        except TimeoutError:
            log.warning("metric ingester %s: stopped in the middle of a round", self.consumer)

    async def _run(self) -> None:
        pauses: Iterator[float] | None = None  # while rounds fail; the pause is cut short by stop()
        while not self._stopping.is_set():
            try:
                await self.ingest_round()
                pauses = None
            except Exception as e:
                if pauses is None:
                    log.warning("metric ingester %s: round failed (%r); retrying", self.consumer, e)
                    pauses = BACKOFF.pauses()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), next(pauses))

    async def ingest_round(self) -> int:
        """Read what there is (waiting up to ``block_ms``), store it, acknowledge it, trim; the number of
        points stored. Raises when storing fails: the entries stay pending for the next round."""
        active = await self.log.active_runs()
        run_ids = await self._grouped_runs(active)
        if not run_ids:
            if active and time.monotonic() - self._swept_at > self.sweep_seconds:
                self._swept_at = time.monotonic()
                await self._retire_finished(active)  # runs left in the set without a stream
            await asyncio.sleep(self.block_ms / 1000)
            return 0
        entries: list[Entry] = []
        if self._own_pending:
            entries = await self._read(run_ids, "0", None)
            self._own_pending = bool(entries)
        if not entries and time.monotonic() - self._claimed_at > self.claim_idle_ms / 2000:
            self._claimed_at = time.monotonic()
            entries = await self._claim(run_ids)
        if not entries:
            entries = await self._read(run_ids, ">", self.block_ms)
        points = await self._store(entries) if entries else 0
        if time.monotonic() - self._swept_at > self.sweep_seconds:
            self._swept_at = time.monotonic()
            await self._retire_finished(active)
        return points

    @property
    def read_count(self) -> int:
        """New entries to take per stream in a round: about ``round_points`` points, at most ``count``.
        An ingester that took every waiting entry of a fast run would store them in one long transaction
        while the other ingesters idle; a share per round spreads a run's entries over them as they come,
        and small entries (a slow run's) are still taken many at a time."""
        return max(1, min(self.count, int(self.round_points / self._entry_points)))

    async def _store(self, entries: list[Entry]) -> int:
        batches, kept = await self._readable(entries)
        try:
            dropped = await self._ingest(batches, kept)
        except Exception:
            self._own_pending = True
            raise
        if dropped:
            log.warning("metric ingester: dropped batches of runs that do not exist: %s", sorted(dropped))
        by_run: dict[str, list[Any]] = {}
        for run_id, entry, _ in entries:
            by_run.setdefault(run_id, []).append(entry)
        async with self.redis.pipeline(transaction=False) as pipe:
            for run_id, ids in by_run.items():
                pipe.xack(self.log.stream(run_id), GROUP, *ids)
            await pipe.execute()
        await self._trim(list(by_run), lag_ms=self.trim_lag_ms)
        stored = sum(len(b) for b in batches)
        self.stored_points += stored
        if batches:
            self._entry_points = (self._entry_points + stored / len(batches)) / 2
        return stored

    async def _readable(self, entries: list[Entry]) -> tuple[list[MetricBatch], list[Entry]]:
        """The entries' batches that can be stored (and their entries); the others are set aside."""
        batches: list[MetricBatch] = []
        kept: list[Entry] = []
        for run_id, entry, fields in entries:
            if fields is None:
                continue  # gone from the stream (only ever after it was stored): acknowledged below
            try:
                batch = decode_batch(run_id, entry, fields)
                batch = MetricBatch(batch.run_id, batch.seq, checked(batch.series))
            except (ValueError, DomainError) as e:
                await self.set_aside.put(run_id, entry, fields, "refused", str(getattr(e, "message", e)))
                continue
            batches.append(batch)
            kept.append((run_id, entry, fields))
        return batches, kept

    async def _ingest(self, batches: list[MetricBatch], entries: list[Entry]) -> set[str]:
        """Store the batches in one transaction. When that fails, each on its own: one the database
        refuses while others are stored is set aside; when none can be stored the database is what fails
        (down, or refusing everything), so the round fails and is tried again."""
        try:
            return await self.metrics.ingest(batches)
        except Exception as e:
            if _outage(e):
                raise
            if len(batches) < 2:
                if batches and await self._stores_others(batches[0]):
                    await self._put_aside(entries[0], e)
                    return set()
                raise
        dropped: set[str] = set()
        failed: list[tuple[Entry, Exception]] = []
        for batch, entry in zip(batches, entries, strict=True):
            try:
                dropped |= await self.metrics.ingest([batch])
            except Exception as e:
                failed.append((entry, e))
        if len(failed) == len(batches) or any(_outage(e) for _, e in failed):
            raise failed[0][1]
        for entry, e in failed:
            await self._put_aside(entry, e)
        return dropped

    async def _stores_others(self, batch: MetricBatch) -> bool:
        """Whether the database answers at all (one failed batch alone: is it the batch, or the database?)."""
        try:
            await self.metrics.finished([batch.run_id])
        except Exception:
            return False
        return True

    async def _put_aside(self, entry: Entry, error: Exception) -> None:
        run_id, entry_id, fields = entry
        await self.set_aside.put(run_id, entry_id, fields, "not stored", f"{type(error).__name__}: {error}")

    async def _grouped_runs(self, run_ids: list[str]) -> list[str]:
        """The runs whose stream has the group, creating it where missing. Not with MKSTREAM: a run in
        the active set whose stream is gone was just retired, and must not get an empty stream back."""
        new = [r for r in run_ids if r not in self._grouped]
        if new:
            async with self.redis.pipeline(transaction=False) as pipe:
                for run_id in new:
                    pipe.xgroup_create(self.log.stream(run_id), GROUP, id="0")
                results = await pipe.execute(raise_on_error=False)
            for run_id, result in zip(new, results, strict=True):
                if not isinstance(result, Exception) or "BUSYGROUP" in str(result):
                    self._grouped.add(run_id)
        return [r for r in run_ids if r in self._grouped]

    async def _read(self, run_ids: list[str], after: str, block_ms: int | None) -> list[Entry]:
        """``after`` is ``>`` for new entries, ``0`` for those pending under this consumer."""
        streams: dict[Any, Any] = {self.log.stream(r): after for r in run_ids}
        try:
            count = self.read_count if after == ">" else self.count
            found = await self.redis.xreadgroup(GROUP, self.consumer, streams, count, block_ms)
        except ResponseError as e:
            # NOGROUP, or UNBLOCKED: a stream was retired (by another ingester, while this one waited on it)
            if "NOGROUP" not in str(e) and "UNBLOCKED" not in str(e):
                raise
            self._grouped.clear()  # find out which next round
            return []
        return self._entries(run_ids, [(stream, entries) for stream, entries in found or ()])

    async def _claim(self, run_ids: list[str]) -> list[Entry]:
        """Entries left pending longer than ``claim_idle_ms`` by an ingester that died, now this one's."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                stream = self.log.stream(run_id)
                pipe.xautoclaim(stream, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=self.count)
            results = await pipe.execute(raise_on_error=False)
        found = []
        for run_id, result in zip(run_ids, results, strict=True):
            if not isinstance(result, Exception):
                found.append((self.log.stream(run_id), result[1]))
        return self._entries(run_ids, found)

    def _entries(self, run_ids: list[str], found: list[tuple[Any, Any]]) -> list[Entry]:
        runs = {self.log.stream(r).encode(): r for r in run_ids}
        entries: list[Entry] = []
        for stream, items in found:
            run_id = runs[stream if isinstance(stream, bytes) else stream.encode()]
            entries.extend((run_id, entry, fields) for entry, fields in items)
        return entries

    async def _trim(self, run_ids: list[str], lag_ms: int) -> None:
        """Trim each stream below its lowest entry not yet stored, keeping the last ``lag_ms`` (see the
        module's docstring for why that is safe for followers)."""
        async with self.redis.pipeline(transaction=True) as pipe:  # one consistent view of the group
            for run_id in run_ids:
                pipe.xinfo_groups(self.log.stream(run_id))
                pipe.xpending(self.log.stream(run_id), GROUP)
            results = await pipe.execute(raise_on_error=False)
        recent = (int(time.time() * 1000) - lag_ms) << SEQ_BITS
        for i, run_id in enumerate(run_ids):
            groups, pending = results[2 * i], results[2 * i + 1]
            if isinstance(groups, Exception) or isinstance(pending, Exception):
                continue  # the stream was retired meanwhile
            group = next((g for g in groups if _text(g["name"]) == GROUP), None)
            if group is None:
                continue
            if pending["pending"]:
                stored_below = seq_of(pending["min"])
            else:
                stored_below = seq_of(group["last-delivered-id"]) + 1
            upto = min(stored_below, recent) if lag_ms else stored_below
            if upto > 1:
                await self.log.trim(run_id, upto)

    async def _retire_finished(self, run_ids: list[str]) -> None:
        """Empty and forget the streams of finished runs once all their entries are stored."""
        finished = sorted(await self.metrics.finished(run_ids))
        if not finished:
            return
        await self._trim(finished, lag_ms=0)
        for run_id in finished:
            if await self.log.retire(run_id):
                self._grouped.discard(run_id)


# PostgreSQL rolled the transaction back because of another one (a deadlock between two ingesters storing
# the same run, a serialization failure): nothing is wrong with what was sent, and trying again stores it.
CONFLICTS = frozenset({"40P01", "40001"})


def _outage(error: Exception) -> bool:
    """The database or the network failing, or a transaction lost to a concurrent one, as opposed to the
    database refusing what was sent: the round fails and its entries are read again, none set aside."""
    if isinstance(error, OSError | TimeoutError | OperationalError | InterfaceError | DisconnectionError):
        return True
    orig = getattr(error, "orig", None)  # the driver's error, with its SQLSTATE (as api/errors.py reads it)
    return (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) in CONFLICTS


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
