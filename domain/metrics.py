"""Metrics as columns: batches of packed series and their vectorised checks (downsampling: domain/series.py).

A batch travels as columns from the training loop to storage and to live subscribers; ``MetricPoint`` is
only what a reader asks for one point at a time (``latestMetrics``, a series' ``points``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from ptw.domain.errors import BadInput

MAX_KEY_LENGTH = 200
MAX_POINTS_PER_CALL = 100_000
MAX_STEP = 2**31 - 1  # GraphQL's Int is 32-bit signed: every stored step must be readable back
LATEST_TIME = 253402300800.0  # 10000-01-01: no datetime, nor PostgreSQL's timestamptz, goes further

Steps = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MetricPoint:
    key: str
    step: int
    value: float
    timestamp: datetime


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """One key's points inside a batch, as packed columns of equal length (timestamps: Unix seconds, UTC)."""

    key: str
    steps: Steps
    values: Floats
    timestamps: Floats

    @classmethod
    def of(cls, key: str, steps: Any, values: Any, timestamps: Any) -> Series:
        return cls(
            key,
            np.asarray(steps, dtype=np.int64),
            np.asarray(values, dtype=np.float64),
            np.asarray(timestamps, dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.steps)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Series):
            return NotImplemented
        return (
            self.key == other.key
            and np.array_equal(self.steps, other.steps)
            and np.array_equal(self.values, other.values)
            and np.array_equal(self.timestamps, other.timestamps)
        )

    __hash__ = None  # type: ignore[assignment]

    def points(self) -> Iterator[MetricPoint]:
        """The series one point at a time, for readers that want points (GraphQL's ``points``)."""
        stamps: dict[float, datetime] = {}
        columns = self.steps.tolist(), self.values.tolist(), self.timestamps.tolist()
        for step, value, at in zip(*columns, strict=True):
            stamp = stamps.get(at)
            if stamp is None:  # the points of one logged row share their time
                stamp = stamps[at] = datetime.fromtimestamp(at, UTC)
            yield MetricPoint(self.key, step, value, stamp)

    def take(self, where: Any) -> Series:
        return Series(self.key, self.steps[where], self.values[where], self.timestamps[where])


@dataclass(frozen=True)
class MetricBatch:
    """Series stored together; ``seq`` orders batches within a run and is the subscription cursor."""

    run_id: str
    seq: int
    series: tuple[Series, ...]

    @classmethod
    def of_points(cls, run_id: str, seq: int, points: Iterable[MetricPoint]) -> MetricBatch:
        return cls(run_id, seq, series_of_points(points))

    def __len__(self) -> int:
        """How many points the batch holds."""
        return sum(len(s) for s in self.series)

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.series]

    def points(self) -> Iterator[MetricPoint]:
        for s in self.series:
            yield from s.points()

    def only(self, keys: frozenset[str] | None) -> MetricBatch:
        """The batch with only the series of ``keys`` (every one when None)."""
        if keys is None:
            return self
        return MetricBatch(self.run_id, self.seq, tuple(s for s in self.series if s.key in keys))


def series_of_points(points: Iterable[MetricPoint]) -> tuple[Series, ...]:
    """Points as one series per key, keys in the order they first appear, points in the order given."""
    columns: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for p in points:
        steps, values, stamps = columns.setdefault(p.key, ([], [], []))
        steps.append(p.step)
        values.append(p.value)
        stamps.append(p.timestamp.timestamp())
    return tuple(Series.of(key, *cols) for key, cols in columns.items())


def merged(batches: Sequence[MetricBatch]) -> MetricBatch:
    """Consecutive batches of one run as one: the last one's seq (the cursor), one series per key."""
    if len(batches) == 1:
        return batches[0]
    last = batches[-1]
    return MetricBatch(last.run_id, last.seq, concatenated(s for b in batches for s in b.series))


def concatenated(series: Iterable[Series]) -> tuple[Series, ...]:
    """One series per key, its parts joined in the order given."""
    parts: dict[str, list[Series]] = {}
    for s in series:
        parts.setdefault(s.key, []).append(s)
    return tuple(
        found[0]
        if len(found) == 1
        else Series(
            key,
            np.concatenate([s.steps for s in found]),
            np.concatenate([s.values for s in found]),
            np.concatenate([s.timestamps for s in found]),
        )
        for key, found in parts.items()
    )


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot name a stored metric, or None. PostgreSQL's text holds no NUL, and a lone
    surrogate cannot be encoded to UTF-8 (storage and every JSON answer would fail on it)."""
    if not isinstance(key, str):
        return f"metric names are strings, not {type(key).__name__}"
    if not key or len(key) > MAX_KEY_LENGTH:
        return f"metric names are 1-{MAX_KEY_LENGTH} characters"
    if "\x00" in key:
        return "metric names cannot hold a NUL character"
    if not key.isascii():
        try:
            key.encode()
        except UnicodeEncodeError:
            return "metric names cannot hold an unpaired surrogate"
    return None


def checked(series: Sequence[Series]) -> tuple[Series, ...]:
    """Refuse a malformed batch with the offending key and step; keep, for a repeated (key, step), the
    last point given. Vectorised: its cost per point is numpy's, not Python's.

    NaN and ±inf cannot travel through JSON or GraphQL's Float: they are refused here (the SDK drops them
    before sending and reports it as a run event)."""
    joined = concatenated(series)
    if sum(len(s) for s in joined) > MAX_POINTS_PER_CALL:
        raise BadInput(f"at most {MAX_POINTS_PER_CALL} points per call", field="points")
    for s in joined:
        problem = key_problem(s.key)
        if problem:
            raise BadInput(f"{problem}: {str(s.key)[:MAX_KEY_LENGTH]!r}", field="points.key")
        if not len(s.steps) == len(s.values) == len(s.timestamps):
            raise BadInput(f"the columns of {s.key!r} have different lengths", field="points")
        bad = np.flatnonzero((s.steps < 0) | (s.steps > MAX_STEP))
        if len(bad):
            step = int(s.steps[bad[0]])
            raise BadInput(f"{s.key!r} at step {step}: steps are 0-{MAX_STEP}", field="points.step")
        bad = np.flatnonzero(~np.isfinite(s.values))
        if len(bad):
            step = int(s.steps[bad[0]])
            raise BadInput(f"{s.key!r} at step {step} is not a finite number", field="points.value")
        bad = np.flatnonzero(~((s.timestamps >= 0) & (s.timestamps < LATEST_TIME)))
        if len(bad):
            step = int(s.steps[bad[0]])
            raise BadInput(f"{s.key!r} at step {step}: its timestamp is not a time", field="points.timestamp")
    return tuple(last_per_step(s) for s in joined if len(s))


def sifted(series: Sequence[Series]) -> tuple[tuple[Series, ...], list[str]]:
    """The points ``checked`` would take, and a line for each key that had points left out: for senders
    whose good points must be stored whatever a bad one next to them (the supervisor's coalesced batch)."""
    kept: list[Series] = []
    problems: list[str] = []
    for s in concatenated(series):
        problem = key_problem(s.key)
        if problem:
            problems.append(f"{problem}: {len(s)} points of {str(s.key)[:MAX_KEY_LENGTH]!r} left out")
            continue
        n = min(len(s.steps), len(s.values), len(s.timestamps))
        s = Series(s.key, s.steps[:n], s.values[:n], s.timestamps[:n])
        good = (s.steps >= 0) & (s.steps <= MAX_STEP) & np.isfinite(s.values)
        good &= (s.timestamps >= 0) & (s.timestamps < LATEST_TIME)
        if not bool(good.all()):
            first = int(s.steps[np.flatnonzero(~good)[0]])
            problems.append(f"{int((~good).sum())} points of {s.key!r} left out (the first at step {first})")
            s = s.take(good)
        if len(s):
            kept.append(s)
    return tuple(kept), problems


def last_per_step(s: Series) -> Series:
    """The series with one point per step, the last one given; in step order when steps repeated."""
    if len(s) < 2 or bool(np.all(s.steps[1:] > s.steps[:-1])):
        return s  # the common case, steps already increasing
    _, first_from_end = np.unique(s.steps[::-1], return_index=True)
    return s.take(len(s) - 1 - first_from_end)
