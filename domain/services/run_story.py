"""Keeping a run's story inside the transaction that changes it: output lines within the cap, attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ptw.domain.ports import UnitOfWork
from ptw.domain.run_story import MAX_LOG_LINES, AttemptOutcome, RunAttempt, RunLogLine, cut_line
from ptw.domain.runs import Run

Output = tuple[str, str, datetime]  # (stream, line, at)


async def keep_output(uow: UnitOfWork, run_id: str, lines: Sequence[Output]) -> list[RunLogLine]:
    """Store ``lines`` after the run's last one while it has fewer than MAX_LOG_LINES; the first line
    over the cap is replaced by one that says so, and later ones are not stored. The caller holds the
    run's row lock (seqs are taken in order) and commits."""
    if not lines:
        return []
    last = await uow.run_logs.last_seq(run_id)
    if last > MAX_LOG_LINES:
        return []
    room = MAX_LOG_LINES - last
    kept = [RunLogLine(run_id, last + i + 1, s, line, at) for i, (s, line, at) in enumerate(lines[:room])]
    if len(lines) > room:
        kept.append(cut_line(run_id, last + len(kept) + 1, lines[room][2]))
    await uow.run_logs.add(kept)
    return kept


async def keep_line(uow: UnitOfWork, run_id: str, line: str, at: datetime) -> int | None:
    """A system line about the run; its seq, None once the run's output is cut."""
    kept = await keep_output(uow, run_id, [("system", line, at)])
    return kept[0].seq if kept and kept[0].line == line else None


async def begin_attempt(uow: UnitOfWork, run: Run, at: datetime) -> None:
    await uow.attempts.put(RunAttempt(run.id, run.attempt, at, executor=run.executor))


async def note_device(uow: UnitOfWork, run: Run) -> None:
    await uow.attempts.set_device(run.id, run.attempt, run.device)


async def end_attempt(
    uow: UnitOfWork,
    run: Run,
    attempt: int,
    outcome: AttemptOutcome,
    reason: str | None,
    at: datetime,
) -> None:
    """Say how ``attempt`` of ``run`` ended (``run`` as it was before it moved on to the next attempt)."""
    # Stored whole only when it was never stored (begun before attempts were kept, or never claimed: ended
    # while queued); a stored attempt gets its end, unless it already had one.
    begun = RunAttempt(run.id, attempt, run.started_at or at, run.executor, run.device)
    await uow.attempts.end(begun.ended(outcome, reason, at))
