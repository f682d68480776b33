"""The binary body of ``POST /api/runs/{id}/metrics`` (see ``ptw.api.ingest.body``): a header line of keys
and counts, then each series' steps (int64), values and timestamps (float64), little-endian."""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Mapping

CONTENT_TYPE = "application/x-ptw-columns"
MAGIC = b"PTWC1\n"

Columns = tuple[array, array, array]  # steps ('q'), values ('d'), timestamps ('d')


def encode(series: Mapping[str, Columns]) -> bytes:
    header = {"series": [{"key": key, "n": len(cols[0])} for key, cols in series.items()]}
    parts = [MAGIC, json.dumps(header).encode(), b"\n"]
    for steps, values, stamps in series.values():
        for column in (steps, values, stamps):
            if sys.byteorder != "little":
                column = array(column.typecode, column)
                column.byteswap()
            parts.append(column.tobytes())
    return b"".join(parts)
