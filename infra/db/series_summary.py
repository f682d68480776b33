"""Downsampling a long series from its block summaries: each bucket of whole blocks keeps the minimum and
the maximum of its blocks, which the summaries hold, so a read of a million points touches a thousand
summary rows and no packed array."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from ptw.domain.series import SeriesRead, bucket_extremes, extremes_index
from ptw.infra.db.metric_blocks import Points

# Fewer blocks than buckets: the points themselves are downsampled (finer than whole blocks) when there are
# at most this many per point asked; beyond, each block is its own bucket. A read so loads at most
# 64 x maxPoints points, which is what the query cost rule charges it for (api/cost.py).
DECODE_FACTOR = 64


async def downsample_read(
    key: str,
    total: int,
    summaries: Sequence[dict[str, Any]],
    max_points: int,
    load: Callable[[], Awaitable[Points]],
) -> SeriesRead:
    """At most ``max_points`` of the ``total`` points the ``summaries`` (step-ordered blocks) describe:
    the first, the last, and the minimum and maximum of each of ``(max_points - 2) // 2`` buckets."""
    buckets = (max_points - 2) // 2
    if max_points >= 4 and len(summaries) >= buckets:
        return _from_summaries(key, total, summaries, buckets)
    if total <= DECODE_FACTOR * max_points:
        points = await load()
        kept = points.take(extremes_index(points.values, max_points))
        return SeriesRead(key, total, kept.steps, kept.values, kept.timestamps)
    if max_points >= 4:
        return _from_summaries(key, total, summaries, len(summaries))
    return _ends(key, total, summaries, max_points)


def _column(summaries: Sequence[dict[str, Any]], name: str, dtype: type) -> Any:
    return np.fromiter((s[name] for s in summaries), dtype, len(summaries))


def _from_summaries(key: str, total: int, summaries: Sequence[dict[str, Any]], buckets: int) -> SeriesRead:
    n = len(summaries)
    starts = np.unique((np.arange(buckets) * n) // buckets)
    lows, highs = bucket_extremes(
        _column(summaries, "min_value", np.float64), _column(summaries, "max_value", np.float64), starts
    )
    first, last = summaries[0], summaries[-1]
    picks = [
        (first, "first"),
        *((summaries[i], "min") for i in lows),
        *((summaries[i], "max") for i in highs),
    ]
    picks.append((last, "last"))
    steps = np.array([s[f"{w}_step"] for s, w in picks], np.int64)
    values = np.array([s[f"{w}_value"] for s, w in picks], np.float64)
    stamps = np.array([s[f"{w}_ts"] for s, w in picks], np.float64)
    steps, unique = np.unique(steps, return_index=True)  # a block's minimum may be its first point
    return SeriesRead(key, total, steps, values[unique], stamps[unique])


def _ends(key: str, total: int, summaries: Sequence[dict[str, Any]], max_points: int) -> SeriesRead:
    """1 to 3 points of a long series: the last; the first and the last; and its maximum between them."""
    first, last = summaries[0], summaries[-1]
    picks = [(last, "last")] if max_points == 1 else [(first, "first"), (last, "last")]
    if max_points == 3:
        top = max(summaries, key=lambda s: s["max_value"])
        picks.insert(1, (top, "max"))
    steps = np.array([s[f"{w}_step"] for s, w in picks], np.int64)
    steps, unique = np.unique(steps, return_index=True)
    values = np.array([s[f"{w}_value"] for s, w in picks], np.float64)[unique]
    stamps = np.array([s[f"{w}_ts"] for s, w in picks], np.float64)[unique]
    return SeriesRead(key, total, steps, values, stamps)
