"""The packed columns that ``ctx.log`` appends to, and their hand-over to the background sender: the
pure-Python way, used where the C module (``_metric_log.c``, the same design in C) is not built.

Rows logged with the same keys as the row before go into one segment: a step column, a time column and a
row-major value column (one value per key a row), each an ``array`` that the logging call extends at C
speed. The sender swaps the whole list of segments for an empty one under the lock and works on what it
took with numpy and ``tobytes``: nothing it does is per point, so it does not hold the GIL against the
training thread for longer as more is logged.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ptw.domain.metrics import key_problem


@dataclass(slots=True)
class Segment:
    keys: tuple[str, ...]
    steps: array[int] = field(default_factory=lambda: array("q"))
    times: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class Columns:
    """One segment's columns as numpy arrays (views of the segment's memory)."""

    keys: tuple[str, ...]
    steps: np.ndarray
    times: np.ndarray
    values: np.ndarray  # rows x keys

    @classmethod
    def of(cls, segment: Segment) -> Columns:
        steps = np.frombuffer(segment.steps, dtype=np.int64)
        values = np.frombuffer(segment.values, dtype=np.float64).reshape(len(steps), len(segment.keys))
        return cls(segment.keys, steps, np.frombuffer(segment.times, dtype=np.float64), values)

    def chunks(self, points: int) -> Iterator[Columns]:
        """The rows in pieces of at most ``points`` points (at least one row each)."""
        rows = max(1, points // max(1, len(self.keys)))
        for i in range(0, len(self.steps), rows):
            end = i + rows
            yield Columns(self.keys, self.steps[i:end], self.times[i:end], self.values[i:end])


def check_keys(keys: tuple[str, ...], step: int) -> None:
    """Refuse a row whose keys cannot name stored metrics: TypeError or ValueError naming key and step."""
    for key in keys:
        problem = key_problem(key)
        if problem:
            error = TypeError if not isinstance(key, str) or not key else ValueError
            raise error(f"ctx.log: {problem}, got {key!r} (at step {step})")


class MetricBuffer:
    """Segments waiting to be sent. ``append`` is the logging call's; ``take`` the sender's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.points = 0
        self._segments: list[Segment] = []
        self._last: Segment | None = None
        self._valid: set[tuple[str, ...]] = set()

    def segment(self, keys: tuple[str, ...], step: int) -> Segment:
        """The segment a row of ``keys`` goes into (the caller holds ``lock``); refuses a bad key."""
        last = self._last
        if last is not None and last.keys == keys:
            return last
        if keys not in self._valid:
            check_keys(keys, step)
            if len(self._valid) < 1000:
                self._valid.add(keys)
        self._last = Segment(keys)
        self._segments.append(self._last)
        return self._last

    def take(self) -> list[Segment]:
        """Everything appended so far (the caller holds ``lock``)."""
        taken, self._segments, self._last, self.points = self._segments, [], None, 0
        return taken
