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
