"""Metric points stored as blocks (see infra/db/metric_blocks.py): merge on write, series read from the
block summaries, latest values from the series rows, and replay by batch seq. A block is one or more
segments (rows) of ascending, disjoint steps; ordered by (block, segment) they are in step order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Select, bindparam, select, tuple_, update

from ptw.domain.metrics import MetricBatch, MetricPoint, Series
from ptw.domain.series import SeriesRead, check_max_points
from ptw.infra.db.metric_blocks import (
    BLOCK_STEPS,
    EMPTY,
    MAX_SEGMENTS,
    Points,
    decode,
    encode,
    merge,
    newest,
    split,
)
from ptw.infra.db.models import Base, MetricBlockRow, MetricSeriesRow
from ptw.infra.db.repositories.base import SqlRepository
from ptw.infra.db.series_summary import downsample_read

series_table = Base.metadata.tables[MetricSeriesRow.__tablename__]
blocks = Base.metadata.tables[MetricBlockRow.__tablename__]
_PACKED = ("steps", "values", "timestamps", "seqs")
_DATA = [c for c in blocks.c if c.name not in ("series_id",)]
_CHUNK = 500  # rows named in one statement: far under every dialect's limit on bound parameters


def _incoming(batches: Sequence[MetricBatch]) -> dict[tuple[str, str], Points]:
    """The points of the batches per (run, key), one per step: the newest."""
    parts: dict[tuple[str, str], list[Points]] = defaultdict(list)
    for b in batches:
        for s in b.series:
            seqs = np.full(len(s), b.seq, np.int64)
            parts[(b.run_id, s.key)].append(Points(s.steps, s.values, s.timestamps, seqs))
    return {name: newest(Points.concat(found)) for name, found in parts.items()}


def _batches(run_id: str, keyed: Sequence[tuple[str, Points]]) -> list[MetricBatch]:
    """Replayed points regrouped by seq: each batch one series per key (keys in order), steps ascending."""
    by_seq: dict[int, list[Series]] = defaultdict(list)
    for key, points in keyed:
        order = np.lexsort((points.steps, points.seqs))
        ordered = points.take(order)
        seqs = ordered.seqs
        cuts = np.flatnonzero(seqs[1:] != seqs[:-1]) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(seqs)], strict=True):
            part = ordered.take(slice(lo, hi))
            by_seq[int(seqs[lo])].append(Series(key, part.steps, part.values, part.timestamps))
    return [MetricBatch(run_id, seq, tuple(by_seq[seq])) for seq in sorted(by_seq)]


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    return (items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK))


class SqlMetricRepository(SqlRepository):
    async def add_batch(self, batch: MetricBatch) -> None:
        """One point per (run, key, step); a repeated one takes the value of the higher seq."""
        await self.add_batches([batch])

    async def add_batches(self, batches: Sequence[MetricBatch]) -> None:
        """``add_batch`` of several batches in a handful of statements whatever their size.

        Points past everything stored in their block (the common case: a run logging forward) become a
        new segment of it, so nothing stored is rewritten (a rewritten row leaves a dead one behind until
        VACUUM, which would double the bytes per point). Points among stored ones (a resumed attempt, a late
        batch), or a block of ``MAX_SEGMENTS`` segments, merge the block's segments into one: a point
        already stored with a higher seq is kept, since batches of a run may reach storage out of order.
        Each series' row is locked first (one order for every writer), so two writers of a series take
        turns."""
        incoming = _incoming(batches)
        if not incoming:
            return
        found = await self._lock_series(sorted(incoming))
        parts = {
            (found[series][0], block): part
            for series, points in incoming.items()
            for block, part in split(points)
        }
        segments = await self._segments(sorted(parts))
        merging = [
            where
            for where, part in parts.items()
            if (held := segments.get(where))
            and (part.steps[0] <= max(last for _, last in held) or len(held) >= MAX_SEGMENTS)
        ]
        stored = await self._stored_blocks(merging)
        rows: list[dict[str, Any]] = []
        grown: dict[int, int] = defaultdict(int)
        top: dict[int, tuple[int, Points]] = {}
        for (series_id, block), part in parts.items():
            old = stored.get((series_id, block))
            points = merge(old, part) if old is not None else part
            segment = (
                0
                if old is not None
                else 1 + max((n for n, _ in segments.get((series_id, block), [])), default=-1)
            )
            rows.append({"series_id": series_id, "segment": segment, **encode(block, points)})
            grown[series_id] += len(points) - (len(old) if old is not None else 0)
            if series_id not in top or top[series_id][0] < block:
                top[series_id] = (block, points)
        await self._delete_blocks(merging)
        await self.session.execute(blocks.insert(), rows)
        await self._write_series(found.values(), grown, top)

    async def _lock_series(
        self, names: list[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int | None]]:
        """(id, latest step) of each (run, key), created when new; the rows stay locked (PostgreSQL) until
        the transaction ends. SQLite has one writer at a time anyway."""
        found = {}
        for chunk in _chunks(names):
            stmt = self.upsert(series_table).values([{"run_id": r, "key": k, "count": 0} for r, k in chunk])
            stmt = stmt.on_conflict_do_update(
                index_elements=[series_table.c.run_id, series_table.c.key], set_={"key": stmt.excluded.key}
            ).returning(
                series_table.c.id, series_table.c.run_id, series_table.c.key, series_table.c.latest_step
            )
            for row in (await self.session.execute(stmt)).all():
                found[(row.run_id, row.key)] = (row.id, row.latest_step)
        return found

    async def _segments(self, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], list[tuple[int, int]]]:
        """(segment, last step) of each stored segment of the blocks, without their points."""
        found: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        columns = blocks.c.series_id, blocks.c.block, blocks.c.segment, blocks.c.last_step
        for chunk in _chunks(wanted):
            stmt = select(*columns).where(tuple_(blocks.c.series_id, blocks.c.block).in_(chunk))
            for row in (await self.session.execute(stmt)).all():
                found[(row.series_id, row.block)].append((row.segment, row.last_step))
        return found

    async def _stored_blocks(self, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], Points]:
        """The points of each block, its segments joined (they hold ascending, disjoint steps)."""
        parts: dict[tuple[int, int], list[Points]] = defaultdict(list)
        for chunk in _chunks(wanted):
            stmt = select(blocks).where(tuple_(blocks.c.series_id, blocks.c.block).in_(chunk))
            stmt = stmt.order_by(blocks.c.series_id, blocks.c.block, blocks.c.segment)
            for row in (await self.session.execute(stmt)).mappings():
                parts[(row["series_id"], row["block"])].append(decode(row))
        return {where: Points.concat(found) for where, found in parts.items()}

    async def _delete_blocks(self, wanted: list[tuple[int, int]]) -> None:
        for chunk in _chunks(wanted):
            await self.session.execute(
                blocks.delete().where(tuple_(blocks.c.series_id, blocks.c.block).in_(chunk))
            )

    async def _write_series(
        self,
        found: Iterable[tuple[int, int | None]],
        grown: dict[int, int],
        top: dict[int, tuple[int, Points]],
    ) -> None:
        counts: list[dict[str, Any]] = []
        latest: list[dict[str, Any]] = []
        for series_id, latest_step in found:
            points = top[series_id][1]
            row: dict[str, Any] = {"b_id": series_id, "b_grown": grown[series_id]}
            step = int(points.steps[-1])
            # The highest block written holds the series' highest step, unless a higher one was stored.
            if latest_step is None or step >= latest_step:
                row.update(b_step=step, b_value=float(points.values[-1]), b_ts=float(points.timestamps[-1]))
                latest.append(row)
            else:
                counts.append(row)
        where = series_table.c.id == bindparam("b_id")
        count = series_table.c.count + bindparam("b_grown")
        if counts:
            await self.session.execute(update(series_table).where(where).values(count=count), counts)
        if latest:
            values: dict[str, Any] = {
                "latest_step": bindparam("b_step"),
                "latest_value": bindparam("b_value"),
            }
            stmt = (
                update(series_table).where(where).values(count=count, latest_ts=bindparam("b_ts"), **values)
            )
            await self.session.execute(stmt, latest)

    async def read(
        self, run_id: str, key: str, max_points: int | None = None, after_step: int | None = None
    ) -> SeriesRead:
        """Points of one key after ``after_step`` in step order: all of them when they fit in
        ``max_points`` (or it is None), else downsampled from the block summaries (series_summary)."""
        check_max_points(max_points)
        series_id = await self._series_id(run_id, key)
        if series_id is None:
            return SeriesRead(key, 0, EMPTY.steps, EMPTY.values, EMPTY.timestamps)
        summaries = await self._summaries(series_id, after_step)
        if after_step is not None and summaries and summaries[0]["first_step"] <= after_step:
            # The block the cursor falls in: only its points after the cursor count.
            first = summaries[0]
            summaries[0] = await self._partial(series_id, first["block"], first["segment"], after_step)
        total = sum(s["count"] for s in summaries)
        if max_points is None or total <= max_points:
            points = await self._points(series_id, after_step)
            return SeriesRead(key, total, points.steps, points.values, points.timestamps)
        return await downsample_read(
            key, total, summaries, max_points, lambda: self._points(series_id, after_step)
        )

    async def count(self, run_id: str, key: str, after_step: int | None = None) -> int:
        """Points of a key after ``after_step``, from the series' count or the block counts."""
        if after_step is None:
            stmt = select(series_table.c.count).where(
                series_table.c.run_id == run_id, series_table.c.key == key
            )
            return int((await self.session.execute(stmt)).scalar() or 0)
        return (await self.read(run_id, key, 1, after_step)).total

    async def _series_id(self, run_id: str, key: str) -> int | None:
        stmt = select(series_table.c.id).where(series_table.c.run_id == run_id, series_table.c.key == key)
        return (await self.session.execute(stmt)).scalar()

    async def _summaries(self, series_id: int, after_step: int | None) -> list[dict[str, Any]]:
        columns = [c for c in _DATA if c.name not in _PACKED]
        stmt = select(*columns).where(blocks.c.series_id == series_id)
        if after_step is not None:
            stmt = stmt.where(blocks.c.block >= after_step // BLOCK_STEPS, blocks.c.last_step > after_step)
        rows = (await self.session.execute(stmt.order_by(blocks.c.block, blocks.c.segment))).all()
        names = [c.name for c in columns]
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def _partial(self, series_id: int, block: int, segment: int, after_step: int) -> dict[str, Any]:
        stmt = select(blocks).where(
            blocks.c.series_id == series_id, blocks.c.block == block, blocks.c.segment == segment
        )
        points = decode((await self.session.execute(stmt)).mappings().one())
        return encode(block, points.take(points.steps > after_step))

    async def _points(self, series_id: int, after_step: int | None) -> Points:
        """Every point after ``after_step``, block after block from a cursor: numpy arrays, never a row
        or an object per point."""
        parts = [p async for p in self._stream(series_id, after_step)]
        points = Points.concat(parts)
        return points if after_step is None else points.take(points.steps > after_step)

    async def _stream(self, series_id: int, after_step: int | None) -> AsyncIterator[Points]:
        stmt: Select[Any] = select(blocks).where(blocks.c.series_id == series_id)
        if after_step is not None:
            stmt = stmt.where(blocks.c.block >= after_step // BLOCK_STEPS, blocks.c.last_step > after_step)
        result = await self.session.stream(stmt.order_by(blocks.c.block, blocks.c.segment))
        async for row in result.mappings():
            yield decode(row)

    async def latest(self, run_ids: Sequence[str]) -> dict[str, list[MetricPoint]]:
        """For each run, the point of highest step of each of its keys: one read of the series rows, which
        keep it on write (no block is read)."""
        latest: dict[str, list[MetricPoint]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return latest
        stmt = (
            select(series_table.c.run_id, series_table.c.key, series_table.c.latest_step)
            .add_columns(series_table.c.latest_value, series_table.c.latest_ts)
            .where(series_table.c.run_id.in_(run_ids), series_table.c.latest_step.is_not(None))
            .order_by(series_table.c.run_id, series_table.c.key)
        )
        for row in (await self.session.execute(stmt)).all():
            at = datetime.fromtimestamp(row.latest_ts, UTC)
            latest[row.run_id].append(MetricPoint(row.key, row.latest_step, row.latest_value, at))
        return latest

    async def batches_after(
        self, run_id: str, after_seq: int, keys: Sequence[str] | None = None, before_seq: int | None = None
    ) -> list[MetricBatch]:
        """Stored points with a seq above ``after_seq`` (and below ``before_seq``), batched in seq order:
        only the blocks holding such a seq are read."""
        stmt = (
            select(series_table.c.key, blocks)
            .join(series_table, series_table.c.id == blocks.c.series_id)
            .where(series_table.c.run_id == run_id, blocks.c.max_seq > after_seq)
        )
        if before_seq is not None:
            stmt = stmt.where(blocks.c.min_seq < before_seq)
        if keys is not None:
            stmt = stmt.where(series_table.c.key.in_(keys))
        parts: dict[str, list[Points]] = defaultdict(list)
        order = series_table.c.key, blocks.c.block, blocks.c.segment
        result = await self.session.stream(stmt.order_by(*order))
        async for row in result.mappings():
            points = decode(row)
            wanted = points.seqs > after_seq
            if before_seq is not None:
                wanted &= points.seqs < before_seq
            if wanted.any():
                parts[row["key"]].append(points.take(wanted))
        return _batches(run_id, [(k, Points.concat(p)) for k, p in sorted(parts.items())])
