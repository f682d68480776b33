"""A run's stored output lines and its attempts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select, update

from ptw.domain.run_story import AttemptOutcome, RunAttempt, RunLogLine
from ptw.infra.db.models import Base, RunAttemptRow, RunLogRow
from ptw.infra.db.repositories.base import SqlRepository

run_logs = Base.metadata.tables[RunLogRow.__tablename__]
run_attempts = Base.metadata.tables[RunAttemptRow.__tablename__]


class SqlRunLogRepository(SqlRepository):
    async def add(self, lines: Sequence[RunLogLine]) -> None:
        if lines:
            rows = [
                {"run_id": x.run_id, "seq": x.seq, "stream": x.stream, "line": x.line, "at": x.at}
                for x in lines
            ]
            await self.session.execute(run_logs.insert(), rows)

    async def last_seq(self, run_id: str) -> int:
        stmt = select(func.max(run_logs.c.seq)).where(run_logs.c.run_id == run_id)
        return int((await self.session.execute(stmt)).scalar() or 0)

    async def page(self, run_id: str, after_seq: int, first: int) -> list[RunLogLine]:
        stmt = (
            select(run_logs)
            .where(run_logs.c.run_id == run_id, run_logs.c.seq > after_seq)
            .order_by(run_logs.c.seq)
            .limit(first)
        )
        return [RunLogLine(r.run_id, r.seq, r.stream, r.line, r.at) for r in await self.session.execute(stmt)]


def _attempt(row: Row[Any]) -> RunAttempt:
    return RunAttempt(
        run_id=row.run_id,
        attempt=row.attempt,
        started_at=row.started_at,
        executor=row.executor,
        device=row.device,
        ended_at=row.ended_at,
        outcome=AttemptOutcome(row.outcome) if row.outcome else None,
        reason=row.reason,
    )


class SqlAttemptRepository(SqlRepository):
    async def put(self, attempt: RunAttempt) -> None:
        values = self._values(attempt)
        stmt = self.upsert(run_attempts).values(values)
        changed = {k: v for k, v in values.items() if k not in ("run_id", "attempt")}
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=["run_id", "attempt"], set_=changed)
        )

    async def end(self, attempt: RunAttempt) -> None:
        stmt = self.upsert(run_attempts).values(self._values(attempt))
        ending = {"ended_at": attempt.ended_at, "outcome": _outcome(attempt), "reason": attempt.reason}
        if attempt.device is not None:  # an attempt that ended before its start was written gets it here
            ending["device"] = attempt.device
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["run_id", "attempt"], set_=ending, where=run_attempts.c.outcome.is_(None)
            )
        )

    async def set_device(self, run_id: str, attempt: int, device: str | None) -> None:
        await self.session.execute(
            update(run_attempts)
            .where(run_attempts.c.run_id == run_id, run_attempts.c.attempt == attempt)
            .where(run_attempts.c.device.is_distinct_from(device))
            .values(device=device)
        )

    @staticmethod
    def _values(attempt: RunAttempt) -> dict[str, Any]:
        return {
            "run_id": attempt.run_id,
            "attempt": attempt.attempt,
            "executor": attempt.executor,
            "device": attempt.device,
            "started_at": attempt.started_at,
            "ended_at": attempt.ended_at,
            "outcome": _outcome(attempt),
            "reason": attempt.reason,
        }

    async def get(self, run_id: str, attempt: int) -> RunAttempt | None:
        stmt = select(run_attempts).where(run_attempts.c.run_id == run_id, run_attempts.c.attempt == attempt)
        row = (await self.session.execute(stmt)).first()
        return _attempt(row) if row else None

    async def for_runs(self, run_ids: Sequence[str]) -> dict[str, list[RunAttempt]]:
        if not run_ids:
            return {}
        stmt = (
            select(run_attempts)
            .where(run_attempts.c.run_id.in_(list(run_ids)))
            .order_by(run_attempts.c.run_id, run_attempts.c.attempt)
        )
        found: dict[str, list[RunAttempt]] = {}
        for row in await self.session.execute(stmt):
            found.setdefault(row.run_id, []).append(_attempt(row))
        return found


def _outcome(attempt: RunAttempt) -> str | None:
    return attempt.outcome.value if attempt.outcome else None
