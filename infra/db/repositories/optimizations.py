"""Optimizations and the results (trials) they produce."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update

from ptw.domain.optimizations import Optimization, OptimizationResult, OptimizationStatus
from ptw.domain.ports import Page, PageRequest
from ptw.infra.db.mapping import EntityMapping
from ptw.infra.db.models import Base, OptimizationResultRow, OptimizationRow
from ptw.infra.db.repositories.base import SqlRepository

optimizations = Base.metadata.tables[OptimizationRow.__tablename__]
results = Base.metadata.tables[OptimizationResultRow.__tablename__]


optimization_mapping = EntityMapping(Optimization, optimizations)
result_mapping = EntityMapping(OptimizationResult, results)
_optimization = optimization_mapping.entity_of
_result = result_mapping.entity_of


class SqlOptimizationRepository(SqlRepository):
    async def add(self, optimization: Optimization) -> None:
        await self.insert(
            optimizations, optimization_mapping.values(optimization), f"optimization {optimization.id}"
        )

    async def update(self, optimization: Optimization) -> None:
        values = optimization_mapping.values(optimization)
        del values["id"]
        stmt = update(optimizations).where(optimizations.c.id == optimization.id).values(values)
        await self.session.execute(stmt)

    async def get(self, optimization_id: str, *, for_update: bool = False) -> Optimization | None:
        """``for_update`` holds the optimization until the transaction ends (as ``runs.get`` does: a row
        lock on PostgreSQL, the database's write lock on SQLite)."""
        stmt = select(optimizations).where(optimizations.c.id == optimization_id)
        if for_update and self.postgres:
            stmt = stmt.with_for_update()
        elif for_update:
            touch = update(optimizations).where(optimizations.c.id == optimization_id)
            await self.session.execute(touch.values(status=optimizations.c.status))
        row = (await self.session.execute(stmt)).first()
        return _optimization(row) if row else None

    async def count_with_status(self, project_id: str, statuses: Sequence[OptimizationStatus]) -> int:
        stmt = select(func.count()).where(
            optimizations.c.project_id == project_id,
            optimizations.c.status.in_([s.value for s in statuses]),
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def with_status(self, statuses: Sequence[OptimizationStatus]) -> list[Optimization]:
        stmt = select(optimizations).where(optimizations.c.status.in_([s.value for s in statuses]))
        rows = (await self.session.execute(stmt.order_by(optimizations.c.created_at))).all()
        return [_optimization(row) for row in rows]

    async def find(self, project_ids: Sequence[str], page: PageRequest) -> Page[Optimization]:
        """Newest first."""
        if not project_ids:
            return Page([], has_next=False)
        stmt = select(optimizations).where(optimizations.c.project_id.in_(project_ids))
        order = ("created_at", "id")
        return await self.page(stmt, optimizations, order, page, _optimization, descending=True)

    async def add_result(self, result: OptimizationResult) -> None:
        await self.insert(results, result_mapping.values(result), f"optimization result {result.id}")

    async def update_result(self, result: OptimizationResult) -> None:
        values = result_mapping.values(result)
        del values["id"]
        await self.session.execute(update(results).where(results.c.id == result.id).values(values))

    async def results(self, optimization_id: str, page: PageRequest) -> Page[OptimizationResult]:
        """In the order the trials were created."""
        stmt = select(results).where(results.c.optimization_id == optimization_id)
        return await self.page(stmt, results, ("created_at", "id"), page, _result)

    async def all_results(self, optimization_id: str) -> list[OptimizationResult]:
        stmt = select(results).where(results.c.optimization_id == optimization_id)
        stmt = stmt.order_by(results.c.number, results.c.created_at, results.c.id)
        return [_result(row) for row in (await self.session.execute(stmt)).all()]

    async def get_result(self, result_id: str) -> OptimizationResult | None:
        row = (await self.session.execute(select(results).where(results.c.id == result_id))).first()
        return _result(row) if row else None

    async def result_for_run(self, run_id: str, *, for_update: bool = False) -> OptimizationResult | None:
        stmt = select(results).where(results.c.run_id == run_id).order_by(results.c.created_at).limit(1)
        if for_update and self.postgres:
            stmt = stmt.with_for_update()
        elif for_update:
            touch = update(results).where(results.c.run_id == run_id).values(state=results.c.state)
            await self.session.execute(touch)
        row = (await self.session.execute(stmt)).first()
        return _result(row) if row else None
