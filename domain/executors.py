"""Executors as the control plane sees them: who is alive, who is busy, and how many are wanted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ExecutorState:
    """What an executor last said about itself."""

    id: str
    resource_classes: tuple[str, ...]
    busy: bool
    seen_at: datetime
    devices: tuple[str, ...] = ()
    run_id: str | None = None


@dataclass(frozen=True)
class PoolState:
    workers: int
    busy: int
    queue_depth: int
    desired_workers: int
    queue_by_class: dict[str, int] = field(default_factory=dict)
    executors: tuple[ExecutorState, ...] = ()


def desired_workers(queue_depth: int, busy: int, minimum: int, maximum: int) -> int:
    """Enough workers for every running and waiting run, within [minimum, maximum]."""
    return max(minimum, min(maximum, busy + queue_depth))
