"""JSON of GraphQL answers, whose series columns are numpy arrays: orjson writes those arrays at C speed,
never as a Python list of every point (a million-point series as three lists of floats is ~100 MB)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _fallback(value: object) -> Any:
    # orjson hands over the arrays it cannot write itself (not C-contiguous, or of another dtype).
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_json(data: object) -> str:
    return encode_json_bytes(data).decode()


def encode_json_bytes(data: object) -> bytes:
    """UTF-8 JSON, as an HTTP body takes it: a large answer is not also copied into a str and back."""
    try:
        return orjson.dumps(data, default=_fallback, option=_OPTIONS)
    except orjson.JSONEncodeError as e:
        if "64-bit" not in str(e):
            raise
        # orjson writes integers up to 64 bits; a user's JSON value (params, a summary) may hold a larger
        # one, which the standard library writes exactly.
        return json.dumps(data, default=_fallback, separators=(",", ":"), ensure_ascii=False).encode()
