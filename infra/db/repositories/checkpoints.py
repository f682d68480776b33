"""Checkpoints a run saved, from which a new attempt resumes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select

from ptw.domain.artifacts import KIND_CHECKPOINT, Retention
from ptw.domain.optimizations import Direction
from ptw.domain.runs import Checkpoint
from ptw.infra.db.mapping import EntityMapping
from ptw.infra.db.models import Base, CheckpointRow, RetentionRow
from ptw.infra.db.repositories.base import SqlRepository

checkpoints = Base.metadata.tables[CheckpointRow.__tablename__]
retentions = Base.metadata.tables[RetentionRow.__tablename__]


mapping = EntityMapping(Checkpoint, checkpoints)
_checkpoint = mapping.entity_of


class SqlCheckpointRepository(SqlRepository):
    async def add(self, checkpoint: Checkpoint) -> None:
        await self.insert(checkpoints, mapping.values(checkpoint), f"checkpoint {checkpoint.id}")

    async def for_run(self, run_id: str) -> list[Checkpoint]:
        """Oldest first."""
        stmt = (
            select(checkpoints)
            .where(checkpoints.c.run_id == run_id)
            .order_by(checkpoints.c.created_at, checkpoints.c.id)
        )
        return [_checkpoint(r) for r in (await self.session.execute(stmt)).all()]

    async def get(self, checkpoint_id: str) -> Checkpoint | None:
        row = (
            await self.session.execute(select(checkpoints).where(checkpoints.c.id == checkpoint_id))
        ).first()
        return _checkpoint(row) if row else None

    async def delete(self, checkpoint_ids: Sequence[str]) -> None:
        if checkpoint_ids:
            await self.session.execute(delete(checkpoints).where(checkpoints.c.id.in_(list(checkpoint_ids))))

    async def latest(self, run_id: str) -> Checkpoint | None:
        stmt = (
            select(checkpoints)
            .where(checkpoints.c.run_id == run_id, checkpoints.c.kind == KIND_CHECKPOINT)
            .order_by(checkpoints.c.created_at.desc(), checkpoints.c.id.desc())
            .limit(1)
        )
        row = (await self.session.execute(stmt)).first()
        return _checkpoint(row) if row else None


class SqlRetentionRepository(SqlRepository):
    async def get(self, workflow_id: str) -> Retention | None:
        stmt = select(retentions).where(retentions.c.workflow_id == workflow_id)
        row = (await self.session.execute(stmt)).first()
        if row is None:
            return None
        return Retention(row.keep_last, row.best_by, Direction(row.direction))

    async def put(self, workflow_id: str, retention: Retention) -> None:
        values = {
            "keep_last": retention.keep_last,
            "best_by": retention.best_by,
            "direction": retention.direction.value,
        }
        stmt = self.upsert(retentions).values(workflow_id=workflow_id, **values)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=["workflow_id"], set_=values))
