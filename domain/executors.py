"""Executors as the control plane sees them: who is alive, who is busy, and how many are wanted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
class AutoscalerState:
    """What an autoscaler (``ptw worker --autoscale``) last decided, published for the pool's readers."""

    id: str
    resource_classes: tuple[str, ...]
    minimum: int
    maximum: int
    workers: int  # worker processes it holds, warming ones included, draining ones not
    draining: int
    desired: int
    waiting: int  # runs waiting in the classes it serves
    seen_at: datetime
    gpus: int = 0


@dataclass(frozen=True)
class PoolState:
    workers: int
    busy: int
    queue_depth: int
    desired_workers: int
    queue_by_class: dict[str, int] = field(default_factory=dict)
    executors: tuple[ExecutorState, ...] = ()
    autoscalers: tuple[AutoscalerState, ...] = ()


def desired_workers(queue_depth: int, busy: int, minimum: int, maximum: int) -> int:
    """Enough workers for every running and waiting run, within [minimum, maximum]."""
    return max(minimum, min(maximum, busy + queue_depth))


@dataclass(frozen=True)
class ScalingPolicy:
    """The bounds of an autoscaler: worker processes between ``minimum`` (0: scale to zero) and
    ``maximum``; a worker idle for ``idle_timeout`` seconds may go; each worker runs ``slots`` at a time."""

    minimum: int
    maximum: int
    idle_timeout: float
    slots: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.minimum <= self.maximum or self.maximum < 1:
            raise ValueError("the autoscaler needs 0 <= min <= max and max >= 1")
        if self.idle_timeout < 0 or self.slots < 1:
            raise ValueError("the idle timeout must be >= 0 and slots >= 1")


@dataclass(frozen=True)
class WorkerLoad:
    """One worker process of an autoscaler as the last look at the pool found it."""

    id: str
    running: int  # runs in progress in its slots
    idle_since: float | None  # when it last became idle (seconds, any clock); None: warming or busy


@dataclass(frozen=True)
class ScalingPlan:
    desired: int
    waiting: int
    start: int  # workers to start now
    drain: tuple[str, ...] = ()  # idle workers to stop gracefully, the longest idle first


def plan_scaling(
    policy: ScalingPolicy,
    waiting_by_class: Mapping[str, int],
    served_classes: Sequence[str],
    workers: Sequence[WorkerLoad],
    now: float,
    taken: int = 0,
) -> ScalingPlan:
    """Workers for every run in progress and every run waiting in a class these workers serve, within the
    policy's bounds. Growth is immediate (a waiting run is a user waiting); shrinking takes only workers
    idle for the whole idle timeout and never happens while runs still wait for a free slot (one of
    these idle workers is about to take it), so a burst does not make workers come and go.

    ``taken``: runs a worker took from the queue but whose slot does not say busy yet (it is still
    starting the run's child); they count as waiting, so the worker holding one is never drained."""
    waiting = sum(waiting_by_class.get(rc, 0) for rc in served_classes) + taken
    running = sum(w.running for w in workers)
    needed = -(-(running + waiting) // policy.slots)  # ceil: a worker runs `slots` runs at a time
    desired = max(policy.minimum, min(policy.maximum, needed))
    start = max(0, desired - len(workers))
    surplus = len(workers) - desired
    if surplus <= 0 or waiting > 0:
        return ScalingPlan(desired, waiting, start)
    expired = sorted(
        (w.idle_since, w.id)
        for w in workers
        if w.running == 0 and w.idle_since is not None and now - w.idle_since >= policy.idle_timeout
    )
    return ScalingPlan(desired, waiting, start, tuple(ident for _, ident in expired[:surplus]))
