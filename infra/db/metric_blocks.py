"""Metric points as blocks: the points of one series whose steps share ``step // BLOCK_STEPS``, packed into
rows (one, or a few segments of ascending steps) with their summary (first, last, min, max, count) so that
reads can answer from summaries alone.

Packing (little-endian, numpy-native): values float64; seqs uint32 offsets from the block's ``min_seq``;
timestamps uint32 microseconds from ``ts_base`` when the block spans under 71 minutes, int64 microseconds
otherwise (told apart by their length); steps uint16 offsets within the block, or nothing at all when the
steps are consecutive from ``first_step`` (the common case). 16 bytes a point, plus one row per block."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

BLOCK_STEPS = 1024  # at most 65,536: in-block step offsets are uint16
# A block logged forward a little at a time is stored as segments (rows) appended one after the other;
# at this many, the next write merges them into one.
MAX_SEGMENTS = 16
_U32 = np.dtype("<u4")
_I64 = np.dtype("<i8")
_F64 = np.dtype("<f8")
_U16 = np.dtype("<u2")


@dataclass(frozen=True, slots=True)
class Points:
    """Points of one series in step order, one per step; timestamps in epoch seconds."""

    steps: NDArray[np.int64]
    values: NDArray[np.float64]
    timestamps: NDArray[np.float64]
    seqs: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.steps)

    def take(self, index: Any) -> Points:
        return Points(self.steps[index], self.values[index], self.timestamps[index], self.seqs[index])

    @classmethod
    def concat(cls, parts: list[Points]) -> Points:
        if not parts:
            return EMPTY
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = ("steps", "values", "timestamps", "seqs")
EMPTY = Points(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64), np.empty(0, np.int64))


def newest(points: Points) -> Points:
    """One point per step in step order: the one of highest seq, and of a repeated seq the last given
    (a later write of the same attempt wins, as an upsert of the same batch did)."""
    if len(points) == 0:
        return points
    order = np.lexsort((np.arange(len(points)), points.seqs, points.steps))
    steps = points.steps[order]
    last = np.empty(len(steps), bool)
    last[-1] = True
    np.not_equal(steps[1:], steps[:-1], out=last[:-1])
    return points.take(order[last])


def merge(stored: Points | None, incoming: Points) -> Points:
    """``incoming`` over ``stored``: a step of both keeps the point of the higher seq (incoming on a tie)."""
    return newest(incoming if stored is None else Points.concat([stored, incoming]))


def split(points: Points) -> Iterator[tuple[int, Points]]:
    """(block number, its points) of step-ordered points."""
    blocks = points.steps // BLOCK_STEPS
    cuts = np.flatnonzero(blocks[1:] != blocks[:-1]) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(blocks)], strict=True):
        yield int(blocks[lo]), points.take(slice(lo, hi))


def encode(block: int, points: Points) -> dict[str, Any]:
    """The row of one block (its series id is the caller's)."""
    steps, values, ts, seqs = points.steps, points.values, points.timestamps, points.seqs
    n = len(steps)
    lo, hi = int(np.argmin(values)), int(np.argmax(values))
    micros = np.round(ts * 1e6).astype(np.int64)
    ts_base = int(micros.min())
    offsets = micros - ts_base
    packed_ts = offsets.astype(_U32) if offsets.max() < 2**32 else offsets.astype(_I64)
    min_seq = int(seqs.min())
    consecutive = int(steps[-1]) - int(steps[0]) == n - 1
    return {
        "block": block,
        "count": n,
        "first_step": int(steps[0]),
        "first_value": float(values[0]),
        "first_ts": float(ts[0]),
        "last_step": int(steps[-1]),
        "last_value": float(values[-1]),
        "last_ts": float(ts[-1]),
        "min_step": int(steps[lo]),
        "min_value": float(values[lo]),
        "min_ts": float(ts[lo]),
        "max_step": int(steps[hi]),
        "max_value": float(values[hi]),
        "max_ts": float(ts[hi]),
        "min_seq": min_seq,
        "max_seq": int(seqs.max()),
        "ts_base": ts_base,
        "steps": None if consecutive else (steps - block * BLOCK_STEPS).astype(_U16).tobytes(),
        "values": values.astype(_F64).tobytes(),
        "timestamps": packed_ts.tobytes(),
        "seqs": (seqs - min_seq).astype(_U32).tobytes(),
    }


def decode(row: Mapping[str, Any]) -> Points:
    n = row["count"]
    packed = row["steps"]
    if packed is None:
        steps = np.arange(row["first_step"], row["first_step"] + n, dtype=np.int64)
    else:
        steps = np.frombuffer(packed, _U16).astype(np.int64) + row["block"] * BLOCK_STEPS
    raw_ts = row["timestamps"]
    offsets = np.frombuffer(raw_ts, _U32 if len(raw_ts) == 4 * n else _I64).astype(np.int64)
    return Points(
        steps=steps,
        values=np.frombuffer(row["values"], _F64).astype(np.float64),
        timestamps=(offsets + row["ts_base"]) / 1e6,
        seqs=np.frombuffer(row["seqs"], _U32).astype(np.int64) + row["min_seq"],
    )


SUMMARY_COLUMNS = tuple(
    f"{which}_{field}" for which in ("first", "last", "min", "max") for field in ("step", "value", "ts")
)
