"""Artifacts of runs: checkpoints and files a run saves, and how many checkpoints a workflow keeps.

A run's checkpoints are kept by its workflow's retention: the last ``keep_last`` (never fewer than one,
the one a retried attempt resumes from) and, with ``best_by``, the one whose step has the best value of
that metric. The others are deleted, their files with them. Files a run saves by name are kept whole.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ptw.domain.errors import BadInput
from ptw.domain.optimizations import Direction
from ptw.domain.runs import Checkpoint

KIND_CHECKPOINT, KIND_FILE = "checkpoint", "file"
DEFAULT_KEEP_LAST = 3
MAX_KEEP_LAST = 1000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class Retention:
    keep_last: int = DEFAULT_KEEP_LAST
    best_by: str | None = None  # a metric; for a search's trial, its objective when unset
    direction: Direction = Direction.MINIMIZE


def retention_of(keep_last: int | None, best_by: str | None, direction: Direction | None) -> Retention:
    keep = DEFAULT_KEEP_LAST if keep_last is None else keep_last
    if not 1 <= keep <= MAX_KEEP_LAST:
        raise BadInput(f"keepLast must be between 1 and {MAX_KEEP_LAST}", field="keepLast")
    metric = (best_by or "").strip() or None
    if metric is not None and len(metric) > 200:
        raise BadInput("bestBy: a metric name of at most 200 characters", field="bestBy")
    return Retention(keep, metric, direction or Direction.MINIMIZE)


def check_artifact_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"artifact name {name!r}: 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def beyond_retention(
    checkpoints: Sequence[Checkpoint], retention: Retention, values: Mapping[int, float] | None = None
) -> list[Checkpoint]:
    """The checkpoints ``retention`` does not keep. ``values``: the ``best_by`` metric by step; a
    checkpoint is worth the metric's value at its step (or the last one logged before it)."""
    ordered = sorted(
        (c for c in checkpoints if c.kind == KIND_CHECKPOINT), key=lambda c: (c.created_at, c.id)
    )
    keep = {c.id for c in ordered[-max(1, retention.keep_last) :]}
    if values:
        best = _best(ordered, retention, values)
        if best is not None:
            keep.add(best.id)
    return [c for c in ordered if c.id not in keep]


def _best(
    checkpoints: Sequence[Checkpoint], retention: Retention, values: Mapping[int, float]
) -> Checkpoint | None:
    steps = sorted(values)
    sign = -1.0 if retention.direction is Direction.MAXIMIZE else 1.0
    scored = []
    for checkpoint in checkpoints:
        if checkpoint.step is None:
            continue
        at = bisect.bisect_right(steps, checkpoint.step)
        if at:
            scored.append((sign * values[steps[at - 1]], checkpoint.created_at, checkpoint))
    return min(scored, key=lambda s: (s[0], s[1]))[2] if scored else None
