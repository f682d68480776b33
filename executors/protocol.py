"""The wire between a run supervisor and its child runner: JSON lines, and making values JSON-safe.

Child → parent, one JSON object a line on a dedicated pipe (never stdout, which belongs to the user):
``ready``, ``started {device}``, ``metrics {segments: [...]}`` (see ``metrics_message``),
``report {value, step[, metric]}``, ``checkpoint {uri, step, size[, name, artifact]}`` (with
``artifact: "file"``, a file the run saved), ``log {line}``, ``result {summary}``,
``error {type, message, traceback, phase}``.
Parent → child on stdin: first the job (one JSON line), then control words (``cancel``, ``prune``,
``drain``: the worker is shutting down and the attempt will resume elsewhere from its last checkpoint).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ptw.domain.metrics import Series

if TYPE_CHECKING:
    from ptw.executors.metric_buffer import Columns


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
DRAIN = "drain"
CONTROL_WORDS = frozenset({CANCEL, PRUNE, DRAIN})

# An error raised while importing the entrypoint, as opposed to one raised by the training code.
PHASE_IMPORT = "import"
PHASE_RUN = "run"

# A summary deeper than this is cut: it is a run summary, not a data store.
MAX_SUMMARY_DEPTH = 8
MAX_REPR = 1000


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def metrics_message(segments: Sequence[Columns]) -> dict[str, Any]:
    """Logged metrics in a compact columnar form: each segment (rows logged with the same keys) sends its
    steps, times and row-major values as packed arrays, made by ``tobytes`` (C work, no float encoded
    one by one); JSON keeps the envelope, and nothing executable (no pickle) crosses from training code
    to its supervisor."""
    return {
        "kind": METRICS,
        "segments": [
            {
                "keys": list(c.keys),
                "steps": _pack(c.steps),
                "times": _pack(c.times),
                "values": _pack(c.values),
            }
            for c in segments
        ],
    }


def metric_series(message: Mapping[str, Any]) -> list[Series]:
    """The series of a metrics message, one per key of each segment: the values of a segment are rows
    (one per step, a value per key), so each key's column is a strided view, no point in Python."""
    series: list[Series] = []
    for segment in message["segments"]:
        keys = segment["keys"]
        steps = np.frombuffer(_unpack(segment["steps"]), dtype=np.int64)
        times = np.frombuffer(_unpack(segment["times"]), dtype=np.float64)
        values = np.frombuffer(_unpack(segment["values"]), dtype=np.float64)
        width = len(keys)
        if len(steps) != len(times) or len(values) != width * len(steps):
            raise ValueError("malformed metrics segment")
        rows = values.reshape(len(steps), width)
        series.extend(Series(str(key), steps, rows[:, i], times) for i, key in enumerate(keys))
    return series


def _pack(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values).tobytes()).decode()


def _unpack(data: str) -> bytes:
    return base64.b64decode(data)


def decode(line: bytes | str) -> dict[str, Any]:
    message = json.loads(line)
    if isinstance(message, dict) and message.get("kind") == METRICS and "segments" in message:
        message = {"kind": METRICS, "series": metric_series(message)}
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
