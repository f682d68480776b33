"""Checkpoints a run saved, from which a new attempt resumes."""

from __future__ import annotations

from sqlalchemy import select

from ptw.domain.runs import Checkpoint
from ptw.infra.db.mapping import EntityMapping
from ptw.infra.db.models import Base, CheckpointRow
from ptw.infra.db.repositories.base import SqlRepository

checkpoints = Base.metadata.tables[CheckpointRow.__tablename__]


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

    async def latest(self, run_id: str) -> Checkpoint | None:
        stmt = (
            select(checkpoints)
            .where(checkpoints.c.run_id == run_id)
            .order_by(checkpoints.c.created_at.desc(), checkpoints.c.id.desc())
            .limit(1)
        )
        row = (await self.session.execute(stmt)).first()
        return _checkpoint(row) if row else None
