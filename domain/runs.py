"""Runs and their state machine: every status change goes through ``Run.transition``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ptw.domain.errors import IllegalTransition
from ptw.domain.run_labels import default_name
from ptw.domain.workflows import Resources


class RunStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    PRUNED = "PRUNED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.PRUNED})

_S = RunStatus
# RUNNING/STARTING -> QUEUED is the retry of a run whose executor was lost (attempt + 1).
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    _S.QUEUED: frozenset({_S.STARTING, _S.CANCELLED, _S.FAILED}),
    _S.STARTING: frozenset({_S.RUNNING, _S.QUEUED, _S.CANCELLING, _S.FAILED, _S.CANCELLED}),
    _S.RUNNING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.PRUNED, _S.CANCELLING, _S.QUEUED}),
    _S.CANCELLING: frozenset({_S.CANCELLED, _S.FAILED, _S.SUCCEEDED}),
    _S.SUCCEEDED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.PRUNED: frozenset(),
}


@dataclass
class Run:
    id: str
    project_id: str
    workflow_id: str
    params: dict[str, Any]
    created_at: datetime
    status: RunStatus = RunStatus.QUEUED
    attempt: int = 1
    resource_class: str = "cpu"
    executor: str | None = None
    device: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None
    idempotency_key: str | None = None
    optimization_id: str | None = None
    metric_seq: int = 0
    metric_keys: list[str] = field(default_factory=list)
    heartbeat_at: datetime | None = None  # the executor's last sign of life for this attempt
    drains: int = 0  # attempts handed back by a worker shutting down: not failures
    name: str = ""  # empty: a readable name derived from the id
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    # Created by the tracking client (ptw.init) in a process of the user's: no executor holds it, and
    # its heartbeat comes from that process.
    external: bool = False
    # Why a QUEUED run has not been started yet (its project at its running-runs quota); None otherwise.
    waiting: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = default_name(self.id)

    @property
    def failed_attempts(self) -> int:
        """Attempts that ended in a failure or a lost executor, the one in progress included."""
        return self.attempt - self.drains

    def transition(self, to: RunStatus, at: datetime) -> None:
        if to not in TRANSITIONS[self.status]:
            raise IllegalTransition(
                f"run {self.id} cannot go from {self.status.value} to {to.value}",
                run_id=self.id,
                status=self.status.value,
            )
        self.status = to
        self.updated_at = at
        if to is RunStatus.RUNNING and self.started_at is None:
            self.started_at = at
        if to.terminal:
            self.finished_at = at

    def requeue(self, at: datetime, *, drained: bool = False) -> None:
        """The executor was lost (or, ``drained``, handed the run back while shutting down): queue the run
        again as a new attempt that resumes from its checkpoint."""
        self.transition(RunStatus.QUEUED, at)
        self.attempt += 1
        self.drains += drained
        self.executor = None
        self.device = None
        self.heartbeat_at = None


@dataclass(frozen=True)
class MetricCondition:
    """A run's latest value of ``key`` compared with ``value``; ``op`` is one of COMPARISONS."""

    key: str
    op: str
    value: float


COMPARISONS = ("GT", "GTE", "LT", "LTE")


@dataclass(frozen=True)
class RunQuery:
    """Filters for listing runs; ``project_ids`` always bounds it to what the caller may see. Runs carry
    every one of ``tags``, have each of ``params`` as given and meet every one of ``metrics``. Ordered by
    creation, or with ``order_metric`` by that metric's latest value (runs without it are left out);
    ``newest_first`` is the descending order of either."""

    project_ids: tuple[str, ...]
    workflow_id: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    optimization_id: str | None = None
    newest_first: bool = True
    tags: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    metrics: tuple[MetricCondition, ...] = ()
    order_metric: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    id: str
    run_id: str
    attempt: int
    step: int | None
    uri: str
    size_bytes: int
    created_at: datetime
    name: str = ""  # a file's own name; a checkpoint's is its object's (``a1-s5.pt``)
    kind: str = "checkpoint"  # or "file": saved by ctx.save_artifact, kept whatever the retention


@dataclass(frozen=True)
class RunJob:
    """What an executor needs to run one attempt of a run."""

    run_id: str
    project_id: str
    attempt: int
    entrypoint: str
    params: dict[str, Any]
    resource_class: str
    timeout_seconds: int | None
    checkpoint_uri: str | None = None
    resources: Resources = field(default_factory=Resources)
    objective: str | None = None  # a search's trial: the metric whose values the optimizer is told
