"""Metric points: bulk upsert (the ingest hot path), series, latest values and replay by batch seq."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any

import asyncpg
from sqlalchemy import Select, func, select, true

from ptw.domain.metrics import MetricBatch, MetricPoint
from ptw.infra.db.models import Base, MetricPointRow, RunRow
from ptw.infra.db.repositories.base import SqlRepository

points = Base.metadata.tables[MetricPointRow.__tablename__]
runs = Base.metadata.tables[RunRow.__tablename__]

# From this many points PostgreSQL gets them by COPY (one binary stream instead of a statement with six
# parameters a row): straight into the table, which is the common case of new points; when some are already
# stored (a retried batch), COPY fails as a whole and they go through a temporary table and one
# INSERT ... SELECT ... ON CONFLICT instead, which is about a third slower.
COPY_THRESHOLD = 2000
_COLUMNS = ("run_id", "key", "step", "value", "ts", "seq")
_STAGE = "metric_points_in"
_CREATE_STAGE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (
    run_id varchar(36), key varchar(200), step bigint, value double precision, ts timestamptz, seq bigint
) ON COMMIT DELETE ROWS
"""
_MOVE_STAGE = f"""
INSERT INTO metric_points (run_id, key, step, value, ts, seq)
SELECT run_id, key, step, value, ts, seq FROM {_STAGE}
ON CONFLICT (run_id, key, step) DO UPDATE SET value = EXCLUDED.value, ts = EXCLUDED.ts, seq = EXCLUDED.seq
WHERE metric_points.seq <= EXCLUDED.seq
"""


def _records(batches: Sequence[MetricBatch]) -> list[tuple[Any, ...]]:
    """Rows of the points, in seq order (so that the last row of a (run, key, step) is the newest)."""
    return [
        (b.run_id, p.key, p.step, p.value, p.timestamp, b.seq)
        for b in sorted(batches, key=lambda b: b.seq)
        for p in b.points()
    ]


def _newest(records: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per (run, key, step), the last one: ON CONFLICT may not touch a row twice in a statement."""
    newest = {(r[0], r[1], r[2]): r for r in records}
    return records if len(newest) == len(records) else list(newest.values())


def _point(row: Any) -> MetricPoint:
    return MetricPoint(key=row.key, step=row.step, value=row.value, timestamp=row.ts)


class SqlMetricRepository(SqlRepository):
    async def add_batch(self, batch: MetricBatch) -> None:
        """Bulk upsert: one point per (run, key, step); a repeated one takes the value of the higher seq."""
        await self.add_batches([batch])

    async def add_batches(self, batches: Sequence[MetricBatch]) -> None:
        """``add_batch`` of several batches in one statement (one COPY from ``COPY_THRESHOLD`` points).

        A point already stored with a higher seq is kept: batches of a run may reach storage out of order
        (production's ingesters take them concurrently from the run's log)."""
        records = _records(batches)
        if not records:
            return
        if self.postgres and len(records) >= COPY_THRESHOLD:
            await self._copy(records)
            return
        rows = [dict(zip(_COLUMNS, r, strict=True)) for r in _newest(records)]
        stmt = self.upsert(points)
        stmt = stmt.on_conflict_do_update(
            index_elements=[points.c.run_id, points.c.key, points.c.step],
            set_={"value": stmt.excluded.value, "ts": stmt.excluded.ts, "seq": stmt.excluded.seq},
            where=points.c.seq <= stmt.excluded.seq,
        )
        # executemany: one prepared statement, so no dialect's limit on bound parameters applies.
        await self.session.execute(stmt, rows)

    async def _copy(self, records: list[tuple[Any, ...]]) -> None:
        try:
            # The savepoint (also what opens the transaction on the asyncpg connection before COPY runs on
            # it directly) lets a failed COPY be undone without losing the rest of the transaction.
            async with self.session.begin_nested():
                driver = await self._driver_connection()
                await driver.copy_records_to_table(points.name, records=records, columns=_COLUMNS)
        except asyncpg.UniqueViolationError:
            # Already stored, or repeated among these batches (not looked for before: the common case
            # has no repeat, and finding out costs a dictionary of every point).
            await self._copy_upsert(_newest(records))

    async def _copy_upsert(self, records: list[tuple[Any, ...]]) -> None:
        conn = await self.session.connection()
        await conn.exec_driver_sql(_CREATE_STAGE)
        driver = await self._driver_connection()
        await driver.copy_records_to_table(_STAGE, records=records, columns=_COLUMNS)
        await conn.exec_driver_sql(_MOVE_STAGE)
        # ON COMMIT only empties it at the end: a second batch in this transaction must not see these rows.
        await conn.exec_driver_sql(f"TRUNCATE {_STAGE}")

    async def _driver_connection(self) -> Any:
        """The asyncpg connection under this session's, for COPY, which SQLAlchemy does not offer."""
        conn = await self.session.connection()
        return (await conn.get_raw_connection()).driver_connection

    async def series(
        self, run_id: str, key: str, after_step: int | None = None, limit: int | None = None
    ) -> list[MetricPoint]:
        """Points of one key in step order."""
        stmt = select(points.c.key, points.c.step, points.c.value, points.c.ts).where(
            points.c.run_id == run_id, points.c.key == key
        )
        if after_step is not None:
            stmt = stmt.where(points.c.step > after_step)
        stmt = stmt.order_by(points.c.step).limit(limit)
        return [_point(r) for r in (await self.session.execute(stmt)).all()]

    async def count(self, run_id: str, key: str, after_step: int | None = None) -> int:
        stmt = select(func.count()).where(points.c.run_id == run_id, points.c.key == key)
        if after_step is not None:
            stmt = stmt.where(points.c.step > after_step)
        return int((await self.session.execute(stmt)).scalar_one())

    async def latest(self, run_ids: Sequence[str]) -> dict[str, list[MetricPoint]]:
        """For each run, the point of highest step of each of its keys, in one statement.

        It walks each run's ``metric_keys`` (kept by ``next_metric_seq``) and probes the primary key index
        for the highest step of each key, so its cost grows with runs x keys, not with stored points as a
        window over all points would."""
        latest: dict[str, list[MetricPoint]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return latest
        for row in (await self.session.execute(self._latest_statement(run_ids))).all():
            if row.step is not None:  # a key of the run with no point stored (yet)
                latest[row.run_id].append(_point(row))
        return latest

    def _latest_statement(self, run_ids: Sequence[str]) -> Select[Any]:
        if self.postgres:
            keys = func.jsonb_array_elements_text(runs.c.metric_keys).table_valued("value")
            keys = keys.render_derived(name="metric_key")
            # LATERAL ... LIMIT 1 cannot be flattened, so PostgreSQL must probe the index once per key; a
            # correlated max(step) in the join condition let it scan every point of the runs instead.
            top = (
                select(points.c.step, points.c.value, points.c.ts)
                .where(points.c.run_id == runs.c.id, points.c.key == keys.c.value)
                .order_by(points.c.step.desc())
                .limit(1)
                .lateral("top")
            )
            return (
                select(runs.c.id.label("run_id"), keys.c.value.label("key"), top.c.step, top.c.value)
                .add_columns(top.c.ts)
                .select_from(runs)
                .join(keys, true())
                .join(top, true())
                .where(runs.c.id.in_(run_ids))
                .order_by(runs.c.id, keys.c.value)
            )
        # SQLite has no LATERAL, and joins a correlated max(step) only after reading every point of the run:
        # one scalar subquery per column instead, each a backward probe of the primary key index.
        keys = func.json_each(runs.c.metric_keys).table_valued("value").alias("metric_key")

        def highest(column: Any) -> Any:
            return (
                select(column)
                .where(points.c.run_id == runs.c.id, points.c.key == keys.c.value)
                .order_by(points.c.step.desc())
                .limit(1)
                .scalar_subquery()
            )

        return (
            select(runs.c.id.label("run_id"), keys.c.value.label("key"))
            .add_columns(*(highest(points.c[name]).label(name) for name in ("step", "value", "ts")))
            .select_from(runs)
            .join(keys, true())
            .where(runs.c.id.in_(run_ids))
            .order_by(runs.c.id, keys.c.value)
        )

    async def batches_after(
        self, run_id: str, after_seq: int, keys: Sequence[str] | None = None, before_seq: int | None = None
    ) -> list[MetricBatch]:
        """Stored points with a seq above ``after_seq`` (and below ``before_seq``), batched in seq order."""
        stmt = select(points).where(points.c.run_id == run_id, points.c.seq > after_seq)
        if before_seq is not None:
            stmt = stmt.where(points.c.seq < before_seq)
        if keys is not None:
            stmt = stmt.where(points.c.key.in_(keys))
        stmt = stmt.order_by(points.c.seq, points.c.key, points.c.step)
        rows = (await self.session.execute(stmt)).all()
        return [
            MetricBatch.of_points(run_id, seq, (_point(r) for r in group))
            for seq, group in groupby(rows, key=lambda r: r.seq)
        ]
