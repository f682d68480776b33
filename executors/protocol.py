"""The wire between a run supervisor and its child runner: typed messages in binary frames, JSON-safe values.

Child → parent, on a dedicated pipe (never stdout, which belongs to the user), one frame a message:
``MAGIC``, two little-endian uint32 (the lengths of a JSON head and of a binary body), the head, the body.
The head is the message's fields with its ``kind``; only ``metrics`` has a body: its segments' raw columns
(steps int64, times float64, row-major values float64, segment after segment), so no float is ever
encoded as text or base64. Messages: ``Ready``, ``Started``, ``Metrics``, ``Report``, ``CheckpointSaved``,
``LogLine``, ``Result``, ``Failed``; decoding gives these types (receivers match on the type, not a string).
Parent → child on stdin: first the job (one JSON line), then control words (``cancel``, ``prune``,
``drain``: the worker is shutting down and the attempt will resume elsewhere from its last checkpoint).
Nothing executable (no pickle) crosses from training code to its supervisor.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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

# A frame starts with MAGIC: ranks of a distributed run write to one pipe, and a frame longer than the
# pipe's atomic write (4 KiB) may come interleaved with another; the reader skips to the next MAGIC then,
# losing those two messages, never the rest.
MAGIC = b"\xffPTW"
SIZES = struct.Struct("<II")


@dataclass(frozen=True, slots=True)
class Ready:
    """Torch is imported and the device chosen; the runner waits for its job."""

    pid: int
    device: str
    name: str


@dataclass(frozen=True, slots=True)
class Started:
    device: str


@dataclass(frozen=True, slots=True)
class Metrics:
    """Logged points, one series per key of each segment (a key may have several)."""

    series: tuple[Series, ...]


@dataclass(frozen=True, slots=True)
class Report:
    value: float
    step: int
    metric: str | None = None


@dataclass(frozen=True, slots=True)
class CheckpointSaved:
    """A checkpoint, or with ``artifact`` = ``"file"`` a file the run saved (``name``), now stored."""

    uri: str
    step: int | None
    size: int
    name: str | None = None
    artifact: str | None = None


@dataclass(frozen=True, slots=True)
class LogLine:
    line: str


@dataclass(frozen=True, slots=True)
class Result:
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failed:
    type: str
    message: str
    traceback: str
    phase: str


Message = Ready | Started | Metrics | Report | CheckpointSaved | LogLine | Result | Failed
KINDS: dict[type[Any], str] = {
    Ready: READY,
    Started: STARTED,
    Metrics: METRICS,
    Report: REPORT,
    CheckpointSaved: CHECKPOINT,
    LogLine: LOG,
    Result: RESULT,
    Failed: ERROR,
}
_TYPES: dict[str, type[Any]] = {kind: cls for cls, kind in KINDS.items() if cls is not Metrics}


def encode(message: Message) -> bytes:
    """The frame of a message (``metrics_frame`` for logged points)."""
    if isinstance(message, Metrics):
        raise TypeError("metrics travel as metrics_frame(segments)")
    fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    head = json.dumps({"kind": KINDS[type(message)], **fields}, separators=(",", ":"), allow_nan=False)
    return _frame(head.encode(), b"")


def metrics_frame(segments: Sequence[Columns]) -> bytes:
    """The frame of logged points: per segment its keys and row count in the head, its columns in the
    body, written by ``tobytes`` (C work, no float encoded one by one)."""
    head = {"kind": METRICS, "segments": [{"keys": list(c.keys), "rows": len(c.steps)} for c in segments]}
    body = b"".join(
        np.ascontiguousarray(column).tobytes() for c in segments for column in (c.steps, c.times, c.values)
    )
    return _frame(json.dumps(head, separators=(",", ":")).encode(), body)


def _frame(head: bytes, body: bytes) -> bytes:
    return MAGIC + SIZES.pack(len(head), len(body)) + head + body


def decode(head: bytes, body: bytes = b"") -> Message:
    """The message of a frame's head and body; ValueError for anything that is not one."""
    try:
        fields = json.loads(head)
        kind = fields.pop("kind")
        if kind == METRICS:
            return Metrics(_series(fields["segments"], body))
        cls = _TYPES[kind]
        message: Message = cls(
            **{f.name: fields[f.name] for f in dataclasses.fields(cls) if f.name in fields}
        )
        return message
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(f"not a runner message: {head[:200]!r} ({e!r})") from None


def frames(data: bytes) -> Iterator[Message]:
    """The messages of consecutive frames (what a pipe carried)."""
    offset = 0
    while offset + len(MAGIC) + SIZES.size <= len(data):
        if data[offset : offset + len(MAGIC)] != MAGIC:
            raise ValueError(f"not a frame at byte {offset}")
        head_size, body_size = SIZES.unpack_from(data, offset + len(MAGIC))
        start = offset + len(MAGIC) + SIZES.size
        offset = start + head_size + body_size
        yield decode(data[start : start + head_size], data[start + head_size : offset])


def _series(segments: list[dict[str, Any]], body: bytes) -> tuple[Series, ...]:
    """One series per key of each segment: a key's values are a strided view of the segment's rows."""
    series: list[Series] = []
    offset = 0

    def column(dtype: type[Any], count: int) -> np.ndarray:
        nonlocal offset
        size = np.dtype(dtype).itemsize * count
        if offset + size > len(body):
            raise ValueError("metrics: the body is shorter than its segments")
        found = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
        offset += size
        return found

    for segment in segments:
        keys, rows = [str(k) for k in segment["keys"]], int(segment["rows"])
        steps, times = column(np.int64, rows), column(np.float64, rows)
        values = column(np.float64, rows * len(keys)).reshape(rows, len(keys))
        series.extend(Series(key, steps, values[:, i], times) for i, key in enumerate(keys))
    if offset != len(body):
        raise ValueError("metrics: the body is longer than its segments")
    return tuple(series)


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
