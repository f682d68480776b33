"""What a run keeps after it ends: the lines of its output and the attempts that ran it, each with its end."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from ptw.domain.runs import RunStatus

MAX_LOG_LINES = 10_000  # per run; the line after the last kept one says the rest was cut
STREAMS = ("stdout", "stderr", "system")


@dataclass(frozen=True)
class RunLogLine:
    run_id: str
    seq: int  # from 1, in the order the lines were stored
    stream: str
    line: str
    at: datetime


def cut_line(run_id: str, seq: int, at: datetime) -> RunLogLine:
    return RunLogLine(
        run_id,
        seq,
        "system",
        f"output cut: the run's first {MAX_LOG_LINES} lines are kept; later ones were only streamed live",
        at,
    )


class AttemptOutcome(enum.StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # the training code raised, or the run could not start
    CANCELLED = "CANCELLED"
    PRUNED = "PRUNED"
    TIMED_OUT = "TIMED_OUT"
    CRASHED = "CRASHED"  # the process died without a result: a signal, an exit code (retried)
    LOST = "LOST"  # its executor stopped heartbeating (retried)
    DRAINED = "DRAINED"  # its worker shut down and handed it back (retried, not a failure)
    SUPERSEDED = "SUPERSEDED"  # another attempt took the run over


_BY_STATUS = {
    RunStatus.SUCCEEDED: AttemptOutcome.SUCCEEDED,
    RunStatus.FAILED: AttemptOutcome.FAILED,
    RunStatus.CANCELLED: AttemptOutcome.CANCELLED,
    RunStatus.PRUNED: AttemptOutcome.PRUNED,
}


def outcome_of(status: RunStatus) -> AttemptOutcome:
    """How an attempt that ended its run ended, by the run's final status."""
    return _BY_STATUS.get(status, AttemptOutcome.FAILED)


@dataclass(frozen=True)
class RunAttempt:
    run_id: str
    attempt: int
    started_at: datetime
    executor: str | None = None
    device: str | None = None
    ended_at: datetime | None = None
    outcome: AttemptOutcome | None = None  # None while it runs
    reason: str | None = None

    def ended(self, outcome: AttemptOutcome, reason: str | None, at: datetime) -> RunAttempt:
        """This attempt with its end; an attempt that already ended keeps its first end."""
        if self.outcome is not None:
            return self
        return replace(self, outcome=outcome, reason=reason, ended_at=at)
