"""JSON of GraphQL answers whose series columns are numpy arrays: encoded chunk by chunk, never as a
Python list of every point (a million-point series as three lists of floats is ~100 MB of objects)."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import numpy as np

CHUNK = 65_536


def encode_json(data: object) -> str:
    arrays: list[np.ndarray[Any, Any]] = []
    # Each array is first written as the string "<token>:<n>", the token drawn for this answer alone, so
    # that no string of the answer can pass for one; then the placeholders are replaced by the arrays.
    token = secrets.token_hex(16)

    def placeholder(value: object) -> str:
        if isinstance(value, np.ndarray):
            arrays.append(value)
            return f"{token}:{len(arrays) - 1}"
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    text = json.dumps(data, separators=(",", ":"), default=placeholder)
    if not arrays:
        return text
    return re.sub(f'"{token}:(\\d+)"', lambda m: encode_array(arrays[int(m[1])]), text)


def encode_array(values: np.ndarray[Any, Any]) -> str:
    """A one-dimensional array as a JSON list, as json.dumps writes its numbers (shortest repr of floats;
    every stored value is finite)."""
    number = int.__repr__ if values.dtype.kind in "iu" else float.__repr__
    parts = [",".join(map(number, values[i : i + CHUNK].tolist())) for i in range(0, len(values), CHUNK)]
    return "[" + ",".join(p for p in parts if p) + "]"
