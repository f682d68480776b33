"""Events published on the live bus after their change is committed; subscriptions are fed from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.metrics import MetricBatch
from domain.runs import Run


def run_topic(run_id: str) -> str:
    return f"run:{run_id}"


def project_topic(project_id: str) -> str:
    return f"project:{project_id}"


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


Event = RunChanged | MetricsRecorded | RunLogged
