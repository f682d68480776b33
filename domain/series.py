"""A series as read back: its columns (downsampled or whole) and how many points it holds after the cursor;
and the vectorised downsampling that keeps each bucket's extremes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ptw.domain.errors import BadInput
from ptw.domain.metrics import MetricPoint, Series

MAX_WHOLE_SERIES = 2_000_000  # points a read without maxPoints may return


@dataclass(frozen=True, eq=False)
class SeriesRead:
    """``total`` points of ``key`` lie after the cursor; the columns hold all of them when they fit in the
    read's ``maxPoints``, else a downsampled selection of them (first, last and extremes kept).
    ``last_step`` is the highest step after the cursor (always among the columns)."""

    key: str
    total: int
    steps: NDArray[np.int64]
    values: NDArray[np.float64]
    timestamps: NDArray[np.float64]  # epoch seconds

    @property
    def last_step(self) -> int | None:
        return int(self.steps[-1]) if len(self.steps) else None

    @property
    def points(self) -> list[MetricPoint]:
        """As objects, for simple clients and small answers (the UI reads the columns)."""
        return list(Series(self.key, self.steps, self.values, self.timestamps).points())

    def columns(self) -> dict[str, NDArray[np.int64] | NDArray[np.float64]]:
        """The columns as they are (the API's JSON encoder writes numpy arrays without a list per point)."""
        return {"steps": self.steps, "values": self.values, "timestamps": self.timestamps}


def check_max_points(max_points: int | None) -> None:
    if max_points is not None and max_points < 1:
        raise BadInput("maxPoints must be at least 1", field="maxPoints")


def extremes_index(values: NDArray[np.float64], max_points: int) -> NDArray[np.intp]:
    """Indices (ascending) of at most ``max_points`` points of a step-ordered series, all when they fit.

    The inner points are cut into ``(max_points - 2) // 2`` buckets of equal count; each keeps its minimum
    and its maximum (the first of equal ones), and the first and last points are always kept: spikes and
    the end of the curve are never lost. Fewer than 4 points asked: evenly spread points, the last one
    always among them."""
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    if max_points < 4:
        if max_points == 1:
            return np.array([n - 1])
        return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.intp))
    inner = values[1:-1]
    buckets = (max_points - 2) // 2
    lows, highs = bucket_extremes(inner, inner, np.unique((np.arange(buckets) * len(inner)) // buckets))
    return np.unique(np.concatenate([[0, n - 1], lows + 1, highs + 1]))


def bucket_extremes(
    lows: NDArray[np.float64], highs: NDArray[np.float64], starts: NDArray[np.intp]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Per bucket (``starts``: ascending first indices), the index of its lowest ``lows`` and of its highest
    ``highs``, the first of equal ones; O(n), no sort."""
    sizes = np.diff(np.r_[starts, len(lows)])
    bucket_of = np.repeat(np.arange(len(starts)), sizes)
    low_hit = lows == np.repeat(np.minimum.reduceat(lows, starts), sizes)
    high_hit = highs == np.repeat(np.maximum.reduceat(highs, starts), sizes)
    return _first_per_bucket(low_hit, bucket_of), _first_per_bucket(high_hit, bucket_of)


def _first_per_bucket(hit: NDArray[np.bool_], bucket_of: NDArray[np.intp]) -> NDArray[np.intp]:
    where = np.flatnonzero(hit)
    _, first = np.unique(bucket_of[where], return_index=True)
    return where[first]
