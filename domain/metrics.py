"""Metric points, validation of incoming points, and server-side downsampling that keeps extremes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ptw.domain.errors import BadInput

MAX_KEY_LENGTH = 200
MAX_POINTS_PER_CALL = 100_000
MAX_STEP = 2**31 - 1  # GraphQL's Int is 32-bit signed: every stored step must be readable back


@dataclass(frozen=True, slots=True)
class MetricPoint:
    key: str
    step: int
    value: float
    timestamp: datetime


@dataclass(frozen=True)
class MetricBatch:
    """Points stored together; ``seq`` orders batches within a run and is the subscription cursor."""

    run_id: str
    seq: int
    points: tuple[MetricPoint, ...]


def check_points(points: Sequence[MetricPoint]) -> list[MetricPoint]:
    """Refuse malformed points and keep, for a repeated (key, step), the last one given.

    NaN and ±inf cannot travel through JSON or GraphQL's Float: they are refused here with the offending
    key and step (the SDK drops them before sending and reports it as a run event)."""
    if len(points) > MAX_POINTS_PER_CALL:
        raise BadInput(f"at most {MAX_POINTS_PER_CALL} points per call", field="points")
    unique: dict[tuple[str, int], MetricPoint] = {}
    for i, p in enumerate(points):
        if not p.key or len(p.key) > MAX_KEY_LENGTH:
            raise BadInput(f"points[{i}].key must be 1-{MAX_KEY_LENGTH} characters", field=f"points.{i}.key")
        if not 0 <= p.step <= MAX_STEP:
            raise BadInput(f"points[{i}].step must be between 0 and {MAX_STEP}", field=f"points.{i}.step")
        if not math.isfinite(p.value):
            raise BadInput(
                f"points[{i}] ({p.key} at step {p.step}) is not a finite number", field=f"points.{i}.value"
            )
        unique[(p.key, p.step)] = p
    return list(unique.values())


def downsample(points: Sequence[MetricPoint], max_points: int) -> list[MetricPoint]:
    """At most ``max_points`` points of a step-ordered series, every point when it already fits.

    The series is cut into buckets; each bucket keeps its minimum and maximum (in step order), and the
    first and last points are always kept, so spikes and the end of the curve are never lost."""
    if max_points < 1:
        raise BadInput("maxPoints must be at least 1", field="maxPoints")
    n = len(points)
    if n <= max_points:
        return list(points)
    if max_points < 4:
        return _spread(points, max_points)
    inner = points[1:-1]
    buckets = (max_points - 2) // 2
    kept: list[MetricPoint] = [points[0]]
    for b in range(buckets):
        lo = b * len(inner) // buckets
        hi = (b + 1) * len(inner) // buckets
        kept.extend(_extremes(inner[lo:hi]))
    kept.append(points[-1])
    return kept


def _extremes(bucket: Sequence[MetricPoint]) -> Iterable[MetricPoint]:
    if not bucket:
        return ()
    low = min(bucket, key=lambda p: p.value)
    high = max(bucket, key=lambda p: p.value)
    if low is high:
        return (low,)
    return (low, high) if low.step < high.step else (high, low)


def _spread(points: Sequence[MetricPoint], count: int) -> list[MetricPoint]:
    if count == 1:
        return [points[-1]]
    last = len(points) - 1
    return [points[round(i * last / (count - 1))] for i in range(count)]
