"""The bodies ``POST /api/runs/{id}/metrics`` takes: metric series as columns, never one object a point.

``application/x-ptw-columns`` (what ``ptw.init`` sends): the line ``PTWC1``, a JSON line
``{"series": [{"key": "loss", "n": 20000}, ...]}``, then for each series in that order its ``n`` steps
(int64), ``n`` values (float64) and ``n`` timestamps (float64, Unix seconds), little-endian.

``application/json`` (for curl and scripts): ``{"series": [{"key": "loss", "steps": [...], "values": [...],
"timestamps": [...]}]}``; ``timestamps`` may be left out (the time of arrival).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from ptw.domain.errors import BadInput

COLUMNS = "application/x-ptw-columns"
MAGIC = b"PTWC1\n"
MAX_SERIES = 1000


def decode(content_type: str, body: bytes) -> list[tuple[str, Any, Any, Any]]:
    """(key, steps, values, timestamps) of each series, as numpy arrays (views of ``body`` when binary)."""
    if content_type.split(";")[0].strip().lower() == COLUMNS:
        return _binary(body)
    return _json(body)


def _binary(body: bytes) -> list[tuple[str, Any, Any, Any]]:
    if not body.startswith(MAGIC):
        raise BadInput(f"a {COLUMNS} body starts with {MAGIC!r}", field="body")
    end = body.find(b"\n", len(MAGIC))
    if end < 0:
        raise BadInput("the header line of the body is missing", field="body")
    header = _series_list(_json_object(body[len(MAGIC) : end]))
    offset = end + 1
    found = []
    for entry in header:
        key, n = entry.get("key"), entry.get("n")
        if not isinstance(key, str) or type(n) is not int or n < 0:
            raise BadInput("each series of the header has a string key and a count n", field="body")
        size = 8 * n
        if offset + 3 * size > len(body):
            raise BadInput(f"the body ends inside the columns of {key[:200]!r}", field="body")
        steps = np.frombuffer(body, dtype="<i8", count=n, offset=offset)
        values = np.frombuffer(body, dtype="<f8", count=n, offset=offset + size)
        stamps = np.frombuffer(body, dtype="<f8", count=n, offset=offset + 2 * size)
        found.append((key, steps, values, stamps))
        offset += 3 * size
    if offset != len(body):
        raise BadInput("the body holds bytes after its last column", field="body")
    return found


def _json(body: bytes) -> list[tuple[str, Any, Any, Any]]:
    now = time.time()
    found = []
    for entry in _series_list(_json_object(body)):
        key, steps, values = entry.get("key"), entry.get("steps"), entry.get("values")
        stamps = entry.get("timestamps")
        if not isinstance(key, str) or not isinstance(steps, list) or not isinstance(values, list):
            raise BadInput("each series has a string key and lists steps and values", field="body")
        if stamps is None:
            stamps = [now] * len(steps)
        try:
            columns = (
                np.asarray(steps, dtype=np.int64),
                np.asarray(values, dtype=np.float64),
                np.asarray(stamps, dtype=np.float64),
            )
        except (TypeError, ValueError, OverflowError):
            raise BadInput(f"the columns of {key[:200]!r} must hold numbers", field="body") from None
        if any(c.ndim != 1 for c in columns):
            raise BadInput(f"the columns of {key[:200]!r} must be flat lists", field="body")
        found.append((key, *columns))
    return found


def _json_object(text: bytes) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body is not valid JSON", field="body") from None
    if not isinstance(value, dict):
        raise BadInput('the body is a JSON object {"series": [...]}', field="body")
    return value


def _series_list(value: dict[str, Any]) -> list[dict[str, Any]]:
    series = value.get("series")
    if not isinstance(series, list) or not all(isinstance(s, dict) for s in series):
        raise BadInput('the body holds "series": a list of objects', field="body")
    if len(series) > MAX_SERIES:
        raise BadInput(f"at most {MAX_SERIES} series a call", field="body")
    return series
