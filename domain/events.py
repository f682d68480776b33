"""Events published on the live bus after their change is committed; subscriptions are fed from them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from ptw.domain.metrics import MetricBatch
from ptw.domain.optimizations import Optimization, OptimizationResult
from ptw.domain.runs import Run


def run_topic(run_id: str) -> str:
    return f"run:{run_id}"


def project_topic(project_id: str) -> str:
    return f"project:{project_id}"


def optimization_topic(optimization_id: str) -> str:
    return f"optimization:{optimization_id}"


def key_topic(key_id: str) -> str:
    return f"key:{key_id}"


EXECUTORS_TOPIC = "executors"  # what every executor process listens to (entrypoint probes)


def probe_topic(probe_id: str) -> str:
    return f"probe:{probe_id}"


@dataclass(frozen=True)
class RunChanged:
    """A run was created or changed (status, device, summary...)."""

    run: Run


@dataclass(frozen=True)
class MetricsRecorded:
    project_id: str
    batch: MetricBatch


@dataclass(frozen=True)
class RunLogged:
    """A line of the run's output, or a message of the system about the run."""

    run_id: str
    project_id: str
    message: str
    stream: str  # "stdout" | "stderr" | "system"
    at: datetime
    seq: int | None = None  # its place among the run's stored lines; None: streamed only (over the cap)


@dataclass(frozen=True)
class KeyRevoked:
    """An API key was revoked: whatever it holds open (WebSocket connections) ends now, on every replica."""

    key_id: str


class Progress(enum.StrEnum):
    STARTED = "STARTED"
    TRIAL_STARTED = "TRIAL_STARTED"
    TRIAL_REPORTED = "TRIAL_REPORTED"
    TRIAL_COMPLETED = "TRIAL_COMPLETED"
    TRIAL_PRUNED = "TRIAL_PRUNED"
    TRIAL_FAILED = "TRIAL_FAILED"
    NEW_BEST = "NEW_BEST"
    FINISHED = "FINISHED"


@dataclass(frozen=True)
class OptimizationProgressed:
    """A step of an optimization: it started, a trial started, reported, ended, became the best; it ended."""

    optimization: Optimization
    progress: Progress
    result: OptimizationResult | None = None
    step: int | None = None
    value: float | None = None


@dataclass(frozen=True)
class EntrypointProbed:
    """A workflow is being registered: can the executors that would run it import its entrypoint?
    Executors serving ``resource_class`` answer on ``probe_topic(probe_id)``."""

    probe_id: str
    entrypoint: str
    resource_class: str


@dataclass(frozen=True)
class EntrypointAnswered:
    """One executor process's answer for its slots: ``problem`` is None when it can import the module."""

    probe_id: str
    executors: tuple[str, ...]
    problem: str | None = None


Event = (
    RunChanged
    | MetricsRecorded
    | RunLogged
    | OptimizationProgressed
    | KeyRevoked
    | EntrypointProbed
    | EntrypointAnswered
)
