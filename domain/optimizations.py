"""Optimizations: hyperparameter searches and performance tuning, each producing OptimizationResults."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class OptimizationKind(enum.StrEnum):
    HYPERPARAMETER_SEARCH = "HYPERPARAMETER_SEARCH"
    PERFORMANCE_TUNING = "PERFORMANCE_TUNING"


class OptimizationStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Direction(enum.StrEnum):
    MINIMIZE = "MINIMIZE"
    MAXIMIZE = "MAXIMIZE"


class ResultState(enum.StrEnum):
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAILED = "FAILED"


@dataclass
class Optimization:
    id: str
    project_id: str
    workflow_id: str
    kind: OptimizationKind
    created_at: datetime
    status: OptimizationStatus = OptimizationStatus.QUEUED
    objective: str | None = None
    direction: Direction = Direction.MINIMIZE
    space: dict[str, Any] = field(default_factory=dict)
    sampler: str | None = None
    pruner: str | None = None
    max_trials: int | None = None
    max_parallel: int | None = None
    error: str | None = None
    finished_at: datetime | None = None
    time_budget_seconds: int | None = None
    params: dict[str, Any] = field(default_factory=dict)  # fixed for every trial, over the defaults
    started_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in (
            OptimizationStatus.SUCCEEDED,
            OptimizationStatus.FAILED,
            OptimizationStatus.CANCELLED,
        )


@dataclass
class OptimizationResult:
    id: str
    optimization_id: str
    config: dict[str, Any]
    created_at: datetime
    state: ResultState = ResultState.RUNNING
    value: float | None = None
    run_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    number: int | None = None  # the trial's number in its search, from 0
    intermediate: dict[int, float] = field(default_factory=dict)  # reported values by step
    # Opaque to the domain: what the search strategy keeps about this trial (Optuna's system attributes).
    search_state: dict[str, Any] = field(default_factory=dict)

    @property
    def last_reported(self) -> float | None:
        return self.intermediate[max(self.intermediate)] if self.intermediate else None
