"""A batch's series as binary columns, the form it takes in a Redis stream entry and on the bus.

Fields: ``k`` the keys (a JSON list), ``n`` each key's point count (uint32), and the series' steps (int64),
values and timestamps (float64, Unix seconds) concatenated in key order. Little-endian, since streams are
shared by machines. Encoding is a few ``tobytes`` and decoding a few ``frombuffer`` (views, no copy): the
cost of a batch does not grow with its points in Python.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ptw.domain.metrics import Series

KEYS, COUNTS, STEPS, VALUES, TIMES = b"k", b"n", b"s", b"v", b"t"
_STEP, _FLOAT, _COUNT = np.dtype("<i8"), np.dtype("<f8"), np.dtype("<u4")


def encode_series(series: Sequence[Series]) -> dict[bytes, bytes]:
    def column(parts: list[Any], dtype: np.dtype[Any]) -> bytes:
        return np.concatenate(parts).astype(dtype, copy=False).tobytes() if parts else b""

    return {
        KEYS: json.dumps([s.key for s in series], separators=(",", ":")).encode(),
        COUNTS: np.array([len(s) for s in series], dtype=_COUNT).tobytes(),
        STEPS: column([s.steps for s in series], _STEP),
        VALUES: column([s.values for s in series], _FLOAT),
        TIMES: column([s.timestamps for s in series], _FLOAT),
    }


def decode_series(fields: Mapping[Any, Any]) -> tuple[Series, ...]:
    """The series of ``encode_series``' fields; ValueError when they are not such fields."""
    fields = {k if isinstance(k, bytes) else str(k).encode(): v for k, v in fields.items()}
    try:
        keys = json.loads(fields[KEYS])
        counts = np.frombuffer(fields[COUNTS], dtype=_COUNT)
        steps = np.frombuffer(fields[STEPS], dtype=_STEP).astype(np.int64, copy=False)
        values = np.frombuffer(fields[VALUES], dtype=_FLOAT).astype(np.float64, copy=False)
        times = np.frombuffer(fields[TIMES], dtype=_FLOAT).astype(np.float64, copy=False)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a metric batch: {e}") from None
    total = int(counts.sum())
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(keys) != len(counts):
        raise ValueError("not a metric batch: keys and counts differ")
    if not len(steps) == len(values) == len(times) == total:
        raise ValueError("not a metric batch: columns of different lengths")
    ends = np.cumsum(counts).tolist()
    starts = [0, *ends[:-1]]
    return tuple(
        Series(key, steps[a:b], values[a:b], times[a:b]) for key, a, b in zip(keys, starts, ends, strict=True)
    )
