"""GraphQL types of what a run keeps after it ends: its stored output lines and its attempts."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from ptw.api.ids import decode_int_cursor, encode_cursor
from ptw.api.pagination import Edge, PageInfo
from ptw.domain import run_story

LOG_CURSOR = "log"
DEFAULT_LOG_LINES = 100
MAX_LOG_LINES_PAGE = 1000


@strawberry.type(description="A stored line of a run's output.")
class RunLogLine:
    stream: str = strawberry.field(description="stdout, stderr or system (what the control plane says).")
    line: str
    at: datetime

    @classmethod
    def from_domain(cls, line: run_story.RunLogLine) -> RunLogLine:
        return cls(stream=line.stream, line=line.line, at=line.at)


@strawberry.type(description="Stored output lines, oldest first.")
class RunLogConnection:
    edges: list[Edge[RunLogLine]]
    page_info: PageInfo


def log_page(lines: list[run_story.RunLogLine], first: int) -> RunLogConnection:
    """``lines``: up to ``first + 1`` lines, the extra one only saying that more follow."""
    shown = lines[:first]
    edges = [Edge(node=RunLogLine.from_domain(x), cursor=encode_cursor(LOG_CURSOR, x.seq)) for x in shown]
    return RunLogConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=len(lines) > first, end_cursor=edges[-1].cursor if edges else None),
    )


def log_request(first: int | None, after: str | None) -> tuple[int, int]:
    """(after_seq, first) of a ``logs`` query; ``first`` is clamped to 1..1000."""
    size = DEFAULT_LOG_LINES if first is None else max(1, min(first, MAX_LOG_LINES_PAGE))
    return (decode_int_cursor(after, LOG_CURSOR) if after else 0), size


@strawberry.enum
class AttemptOutcome(enum.Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    PRUNED = "PRUNED"
    TIMED_OUT = "TIMED_OUT"
    CRASHED = "CRASHED"
    LOST = "LOST"
    DRAINED = "DRAINED"
    SUPERSEDED = "SUPERSEDED"


@strawberry.type(description="One attempt at a run: where it ran, and how and why it ended.")
class RunAttempt:
    attempt: int
    executor: str | None
    device: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: AttemptOutcome | None = strawberry.field(description="None while the attempt runs.")
    reason: str | None = strawberry.field(
        description="Why it ended so: the error, the signal that killed it, the lost executor, the timeout."
    )

    @classmethod
    def from_domain(cls, attempt: run_story.RunAttempt) -> RunAttempt:
        return cls(
            attempt=attempt.attempt,
            executor=attempt.executor,
            device=attempt.device,
            started_at=attempt.started_at,
            ended_at=attempt.ended_at,
            outcome=AttemptOutcome(attempt.outcome.value) if attempt.outcome else None,
            reason=attempt.reason,
        )
