"""Runs: lookup, listing, status updates and the per-run metric batch sequence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update

from ptw.domain.errors import NotFound
from ptw.domain.ports import MAX_PAGE_SIZE, Page, PageRequest
from ptw.domain.runs import Run, RunQuery, RunStatus
from ptw.infra.db.mapping import EntityMapping
from ptw.infra.db.models import Base, RunRow
from ptw.infra.db.repositories.base import SqlRepository
from ptw.infra.db.repositories.run_filters import filtered, ordered_by_metric

runs = Base.metadata.tables[RunRow.__tablename__]

# Owned by next_metric_seq alone: update() never writes them, so a status change made from a Run read
# before some metric batches cannot move the sequence back.
_METRIC_COLUMNS = ("metric_seq", "metric_keys")


mapping = EntityMapping(Run, runs)
_run = mapping.entity_of


class SqlRunRepository(SqlRepository):
    async def add(self, run: Run) -> None:
        values = mapping.values(run) | {"metric_keys": sorted(set(run.metric_keys))}
        await self.insert(runs, values, f"run {run.id} (or its idempotency key)")

    async def update(self, run: Run) -> None:
        """Write the run's state; its metric sequence and keys are left to ``next_metric_seq``."""
        values = {k: v for k, v in mapping.values(run).items() if k not in ("id", *_METRIC_COLUMNS)}
        await self.session.execute(update(runs).where(runs.c.id == run.id).values(values))

    async def delete(self, run_id: str) -> None:
        """Its metric points, artifacts' rows, output and attempts go with it (ON DELETE CASCADE)."""
        await self.session.execute(delete(runs).where(runs.c.id == run_id))

    async def get(self, run_id: str, *, for_update: bool = False) -> Run | None:
        """``for_update`` holds the run until the transaction ends: a row lock on PostgreSQL; on SQLite,
        which has no row locks, the database's write lock, taken by a write that changes nothing, so
        that two tasks of the embedded server cannot both read a run and overwrite each other."""
        stmt = select(runs).where(runs.c.id == run_id)
        if for_update and self.postgres:
            stmt = stmt.with_for_update()
        elif for_update:
            touch = update(runs).where(runs.c.id == run_id).values(attempt=runs.c.attempt)
            await self.session.execute(touch)
        row = (await self.session.execute(stmt)).first()
        return _run(row) if row else None

    async def get_many(self, run_ids: Sequence[str]) -> list[Run]:
        if not run_ids:
            return []
        stmt = select(runs).where(runs.c.id.in_(run_ids))
        return [_run(r) for r in (await self.session.execute(stmt)).all()]

    async def get_by_idempotency_key(self, project_id: str, key: str) -> Run | None:
        stmt = select(runs).where(runs.c.project_id == project_id, runs.c.idempotency_key == key)
        row = (await self.session.execute(stmt)).first()
        return _run(row) if row else None

    async def ids_with_prefix(self, project_ids: Sequence[str], prefix: str, limit: int) -> list[str]:
        """``prefix`` is lower-case hex and dashes (see ``is_short_id``): nothing in it needs escaping."""
        if not project_ids:
            return []
        stmt = (
            select(runs.c.id)
            .where(runs.c.project_id.in_(project_ids), runs.c.id.like(prefix + "%"))
            .order_by(runs.c.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def find(self, query: RunQuery, page: PageRequest) -> Page[Run]:
        """Ordered by (created_at, id), newest first unless ``query.newest_first`` is False."""
        if not query.project_ids:
            return Page([], has_next=False)
        stmt = select(runs).where(runs.c.project_id.in_(query.project_ids))
        if query.workflow_id is not None:
            stmt = stmt.where(runs.c.workflow_id == query.workflow_id)
        if query.statuses:
            stmt = stmt.where(runs.c.status.in_([s.value for s in query.statuses]))
        if query.optimization_id is not None:
            stmt = stmt.where(runs.c.optimization_id == query.optimization_id)
        stmt = filtered(stmt, runs, query, self.postgres)
        if query.order_metric is not None:
            first = max(1, min(page.first, MAX_PAGE_SIZE))
            ordered = ordered_by_metric(
                stmt, runs, query.order_metric, page.after, query.newest_first, first + 1
            )
            rows = (await self.session.execute(ordered)).all()
            return Page([_run(r) for r in rows[:first]], has_next=len(rows) > first)
        order = ("created_at", "id")
        return await self.page(stmt, runs, order, page, _run, descending=query.newest_first)

    async def count_with_status(
        self, project_id: str, statuses: Sequence[RunStatus], *, external: bool | None = None
    ) -> int:
        stmt = select(func.count()).where(
            runs.c.project_id == project_id, runs.c.status.in_([s.value for s in statuses])
        )
        if external is not None:
            stmt = stmt.where(runs.c.external == external)
        return int((await self.session.execute(stmt)).scalar_one())

    async def with_status(self, statuses: Sequence[RunStatus]) -> list[Run]:
        if not statuses:
            return []
        stmt = (
            select(runs)
            .where(runs.c.status.in_([s.value for s in statuses]))
            .order_by(runs.c.created_at, runs.c.id)
        )
        return [_run(r) for r in (await self.session.execute(stmt)).all()]

    async def next_metric_seq(self, run_id: str, new_keys: Sequence[str]) -> int:
        """One UPDATE ... RETURNING: its row lock orders concurrent batches of a run on PostgreSQL (and the
        write lock on SQLite). Keys are merged in Python, after the lock, from the row it returned."""
        stmt = (
            update(runs)
            .where(runs.c.id == run_id)
            .values(metric_seq=runs.c.metric_seq + 1)
            .returning(runs.c.metric_seq, runs.c.metric_keys)
        )
        row = (await self.session.execute(stmt)).first()
        if row is None:
            raise NotFound.of("Run", run_id)
        known = set(row.metric_keys)
        if not known.issuperset(new_keys):
            merged = sorted(known.union(new_keys))
            await self.session.execute(update(runs).where(runs.c.id == run_id).values(metric_keys=merged))
        return int(row.metric_seq)

    async def add_metric_keys(self, run_id: str, keys: Sequence[str]) -> None:
        """Merge under the run's row lock (PostgreSQL) or write lock (SQLite), like ``next_metric_seq``."""
        row = (await self.session.execute(_locked_keys(run_id, self.postgres))).first()
        if row is None:
            raise NotFound.of("Run", run_id)
        known = set(row.metric_keys)
        if not known.issuperset(keys):
            merged = sorted(known.union(keys))
            await self.session.execute(update(runs).where(runs.c.id == run_id).values(metric_keys=merged))


def _locked_keys(run_id: str, postgres: bool) -> Any:
    if postgres:
        return select(runs.c.metric_keys).where(runs.c.id == run_id).with_for_update()
    # SQLite: a write that changes nothing takes the database's write lock, and returns the keys.
    return (
        update(runs)
        .where(runs.c.id == run_id)
        .values(metric_keys=runs.c.metric_keys)
        .returning(runs.c.metric_keys)
    )
