"""The wire between a run supervisor and its child runner: JSON lines, and making values JSON-safe.

Child → parent, one JSON object a line on a dedicated pipe (never stdout, which belongs to the user):
``ready``, ``started {device}``, ``metrics {points: [[key, step, value, ts], ...]}``,
``report {value, step}``, ``checkpoint {uri, step, size}``, ``log {line}``, ``result {summary}``,
``error {type, message, traceback, phase}``.
Parent → child on stdin: first the job (one JSON line), then control words (``cancel``, ``prune``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

READY = "ready"
STARTED = "started"
METRICS = "metrics"
REPORT = "report"
CHECKPOINT = "checkpoint"
LOG = "log"
RESULT = "result"
ERROR = "error"

CANCEL = "cancel"
PRUNE = "prune"
CONTROL_WORDS = frozenset({CANCEL, PRUNE})

# An error raised while importing the entrypoint, as opposed to one raised by the training code.
PHASE_IMPORT = "import"
PHASE_RUN = "run"

# A summary deeper than this is cut: it is a run summary, not a data store.
MAX_SUMMARY_DEPTH = 8
MAX_REPR = 1000


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def decode(line: bytes | str) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict) or not isinstance(message.get("kind"), str):
        raise ValueError(f"not a runner message: {str(line)[:200]!r}")
    return message


def json_safe(value: Any, depth: int = 0) -> Any:
    """A value JSON can carry: tensors and numpy values become numbers or lists, anything else its repr.

    Non-finite floats become the strings ``"nan"``, ``"inf"`` and ``"-inf"``: JSON has no such numbers."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _non_finite(value)
    if depth >= MAX_SUMMARY_DEPTH:
        return _short_repr(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, depth + 1) for v in value]
    tolist = getattr(value, "tolist", None)  # torch.Tensor, numpy arrays and numpy scalars
    if callable(tolist):
        try:
            return json_safe(tolist(), depth + 1)
        except Exception:
            return _short_repr(value)
    return _short_repr(value)


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."
