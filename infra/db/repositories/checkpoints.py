"""Checkpoints a run saved, from which a new attempt resumes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select

from ptw.domain.runs import Checkpoint
from ptw.infra.db.models import Base, CheckpointRow
from ptw.infra.db.repositories.base import SqlRepository

checkpoints = Base.metadata.tables[CheckpointRow.__tablename__]


def _checkpoint(row: Row[Any]) -> Checkpoint:
    return Checkpoint(
        id=row.id,
        run_id=row.run_id,
        attempt=row.attempt,
        step=row.step,
        uri=row.uri,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
    )


class SqlCheckpointRepository(SqlRepository):
    async def add(self, checkpoint: Checkpoint) -> None:
        values = {
            "id": checkpoint.id,
            "run_id": checkpoint.run_id,
            "attempt": checkpoint.attempt,
            "step": checkpoint.step,
            "uri": checkpoint.uri,
            "size_bytes": checkpoint.size_bytes,
            "created_at": checkpoint.created_at,
        }
        await self.insert(checkpoints, values, f"checkpoint {checkpoint.id}")

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
