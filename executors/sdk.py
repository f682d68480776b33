"""The RunContext that training code is given: params, device, metrics, pruning, checkpoints, cancellation.

Training code is a function ``train(ctx) -> dict`` and imports nothing else of ours. Everything a run
reports travels to its supervisor over a pipe; ``ctx.log`` and ``ctx.report`` only append to a buffer that a
background thread sends at most once every ``flush_interval`` seconds (a row at once when the last send is
that old, else with the next row after that, or two intervals after the last send at the latest; sooner once
``flush_points`` points wait), so they never wait on the control plane. Points still buffered when the
function returns or raises are sent before the run's result: nothing logged is lost.

Where the C module is built (``executors/_metric_log.c``; pip builds it where a C compiler is found),
``ctx.log`` is its C function and the background thread a native one that never takes the GIL from
training; elsewhere (or with ``PTW_METRIC_LOG=python``) both are the pure-Python ``metric_buffer`` and
thread below, which behave the same, several times slower.

Values: ``ctx.log`` takes real numbers (Python or numpy numbers, one-element tensors). Anything else raises
``TypeError`` at the call. NaN and ±inf cannot be stored (JSON and GraphQL floats have no such values): they
are dropped here, and the first one of each key is reported once as a log line of the run.

Stopping: ``ctx.cancelled`` turns True when the run is asked to stop; ``ctx.stopping`` (with it) when the
worker is shutting down. Training code that sees either should save a checkpoint and return; after a
``stopping`` the run resumes from that checkpoint on another worker, as a new attempt that is not counted
as a failure.

This module does not import torch until a checkpoint is saved or loaded.
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from ptw.domain.artifacts import KIND_FILE, check_artifact_name
from ptw.domain.metrics import MAX_STEP
from ptw.executors import protocol
from ptw.executors.artifacts import ArtifactStore, LocalStore, checkpoint_path
from ptw.executors.metric_buffer import Columns, MetricBuffer, check_keys

try:  # ctx.log's hot path and sender thread in C (executors/_metric_log.c), built where a compiler was
    from ptw.executors import _metric_log
except ImportError:  # pragma: no cover - an install without it logs in pure Python (the same, slower)
    _metric_log = None

# PTW_METRIC_LOG=python: log in pure Python even where the C module is built (tests, comparisons).
PURE_PYTHON = "python"

__all__ = ["MessageChannel", "RunContext", "checkpoint_path", "follow_control"]


class MessageChannel:
    """Frames to the supervisor (``protocol``); safe from several threads; a vanished reader is ignored."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._broken = False
        # With the C module, every frame (ours and the metric sender thread's) is written by one write()
        # under one mutex, the GIL released; a stream without a file descriptor is written from Python.
        self.pipe: Any = None
        if _metric_log is not None and os.environ.get("PTW_METRIC_LOG") != PURE_PYTHON:
            try:
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                fd = -1
            if fd >= 0:
                stream.flush()
                self.pipe = _metric_log.Pipe(fd)

    @property
    def broken(self) -> bool:
        """True once the supervisor was found gone."""
        return self._broken or (self.pipe is not None and self.pipe.broken)

    def fileno(self) -> int:
        return self._stream.fileno()

    def send(self, message: protocol.Message | bytes) -> None:
        """Send a message, or a frame already made (``protocol.metrics_frame``)."""
        data = message if isinstance(message, bytes) else protocol.encode(message)
        if self.pipe is not None:
            self.pipe.send(data)
            return
        with self._lock:
            if self._broken:
                return
            try:
                self._stream.write(data)
                self._stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                # The supervisor is gone (it kills this process next); training must not crash on it.
                self._broken = True


class RunContext:
    """What a run's training function gets. Built by the runner; training code only uses it.

    ``ctx.log(metrics, step)``: record metric values at a step. Returns at once; values are sent in the
    background. Refused at the call, with nothing of the call kept: a step that is not an integer in
    0-2**31-1, a metric name that is not a string of 1-200 characters without NUL or unpaired surrogate, a
    value that is not a real number (or a one-element tensor). NaN and ±inf are dropped (one warning a key).
    """

    # An attribute, not a method: with the C module it is the C function itself (no Python frame and no
    # method lookup between the training loop and it); else ``_log``.
    log: Callable[..., None]

    def __init__(
        self,
        *,
        run_id: str,
        attempt: int,
        params: Mapping[str, Any],
        device: Any,
        channel: MessageChannel,
        artifacts_dir: Path | None = None,
        artifacts: ArtifactStore | None = None,
        checkpoint_uri: str | None = None,
        flush_interval: float = 0.02,
        flush_points: int = 5000,
        rank: int = 0,
        local_rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.run_id = run_id
        # A distributed run's process (torch's elastic launcher started it): its place in the group.
        self.rank = rank
        self.local_rank = local_rank
        self.world_size = world_size
        self.attempt = attempt
        self.params: dict[str, Any] = dict(params)
        self.device = device
        if artifacts is None:
            if artifacts_dir is None:
                raise TypeError("RunContext needs an artifact store or an artifacts directory")
            artifacts = LocalStore(Path(artifacts_dir))
        self._artifacts = artifacts
        self._channel = channel
        self._earlier_checkpoint = checkpoint_uri
        self._latest_checkpoint: str | None = None
        self._saves = 0
        self._flush_interval = flush_interval
        self._flush_points = flush_points
        self._drained_at = 0.0  # time.time() of the last send of points
        self._buffer = MetricBuffer()
        self._lock = self._buffer.lock  # one lock: a message posted after points never overtakes them
        self._messages: list[protocol.Message] = []
        self._warned: set[str] = set()
        self._cancelled = threading.Event()
        self._stopping = threading.Event()
        self._prune = threading.Event()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._native: Any = None
        if channel.pipe is not None:
            self._native = _metric_log.MetricLog(
                channel.pipe, flush_interval, flush_points, self._new_keys, self._log_slow
            )
            self.log = self._native.log
            return
        self.log = self._log
        self._flusher = threading.Thread(target=self._flush_loop, name="ptw-metrics", daemon=True)
        self._flusher.start()

    # -- metrics and pruning -------------------------------------------------------------------

    def _log(self, metrics: Mapping[str, Any], step: int) -> None:
        """``log`` in pure Python (where the C module is not built)."""
        if type(step) is not int or not 0 <= step <= MAX_STEP:
            step = _step(step)
        if type(metrics) is not dict and not isinstance(metrics, Mapping):
            raise TypeError(
                f"ctx.log takes a mapping of metric names to numbers, not {type(metrics).__name__}"
            )
        keys = tuple(metrics)
        now = time.time()
        buffer = self._buffer
        with buffer.lock:
            segment = buffer.segment(keys, step)
            values = segment.values
            mark = len(values)
            try:
                values.extend(metrics.values())  # C: each value's __float__, nothing else
            except Exception:
                del values[mark:]
                _refuse(metrics, step)
                raise
            segment.steps.append(step)
            segment.times.append(now)
            buffer.points += len(keys)
            full = buffer.points >= self._flush_points
        # The send rule of _metric_log.c (SEND RULE): at once when the last send is an interval old, else
        # with the first row after that or at the latest two intervals after it (the flusher's timer). At
        # most one message an interval leaves, whatever the pace: each costs the training process a thread
        # switch and a write, and every live subscriber a message to receive.
        if (full or now - self._drained_at >= self._flush_interval) and not self._wake.is_set():
            self._wake.set()

    def report(self, value: Any, step: int, metric: str | None = None) -> None:
        """The value of ``metric`` at ``step``, for a search that may prune this run (see ``should_prune``).
        A search judges its trials by the metric it names: by these reports when they name it, else by
        the values ``ctx.log`` gives it; a report that names no metric is not taken for the objective."""
        step = _step(step)
        number = _number(value, f"the reported value at step {step}")
        if metric is not None and (not isinstance(metric, str) or not metric):
            raise TypeError(f"ctx.report: metric must be a non-empty string, got {metric!r}")
        if not math.isfinite(number):
            self._warn_once("<report>", f"ctx.report: dropped {number} at step {step}; not a finite number")
            return
        self._post(protocol.Report(number, step, metric))

    def should_prune(self) -> bool:
        """True once the optimizer decided this trial will not be worth finishing; then return early."""
        return self._prune.is_set()

    @property
    def cancelled(self) -> bool:
        """True once the run was asked to stop, for whatever reason (a user's cancel, its worker shutting
        down: see ``stopping``); return as soon as convenient (it is stopped anyway)."""
        return self._cancelled.is_set()

    @property
    def stopping(self) -> bool:
        """True once the worker running this attempt is shutting down (a deploy, a scale-down, a spot
        machine taken back). Save a checkpoint and return: the run is queued again and resumes from its
        last checkpoint on another worker, without counting a failed attempt, and what this attempt
        returns is ignored. Code that does not look is stopped after the worker's grace period
        (``PTW_DRAIN_GRACE``). ``cancelled`` is True as well, so code that only checks it also stops."""
        return self._stopping.is_set()

    @property
    def is_main(self) -> bool:
        """True in the one process (rank 0) whose metrics, checkpoints and result are the run's."""
        return self.rank == 0

    # -- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self, state: Any, step: int | None = None) -> None:
        """``torch.save`` the state to the run's artifact store (a directory or a bucket, encrypted when a
        key is configured) atomically: a reader never sees a half-written checkpoint. Reported once stored.
        In a distributed run only rank 0 saves (the call does nothing on the others); every rank loads."""
        if not self.is_main:
            return
        import torch

        step = None if step is None else _step(step)
        self._saves += 1
        name = f"a{self.attempt}-s{step}.pt" if step is not None else f"a{self.attempt}-n{self._saves}.pt"
        artifact = self._artifacts.save(f"{self.run_id}/{name}", lambda f: torch.save(state, f))
        self._latest_checkpoint = artifact.uri
        self._post(protocol.CheckpointSaved(artifact.uri, step, artifact.size))

    def save_artifact(self, name: str, data: bytes | str | os.PathLike[str]) -> None:
        """Keep a file of the run under ``name`` (letters, digits, ``.``, ``_``, ``-``): ``data`` is its
        bytes or the path of a file to copy. Stored like checkpoints (atomically, sealed when a key is
        set), listed in ``Run.artifacts`` and downloadable; saving a name again replaces the file."""
        check_artifact_name(name)
        if isinstance(data, bytes | bytearray | memoryview):
            content = bytes(data)

            def fill(f: IO[bytes]) -> None:
                f.write(content)

        else:
            path = Path(data)
            if not path.is_file():
                raise FileNotFoundError(f"ctx.save_artifact: no file at {str(path)!r}")

            def fill(f: IO[bytes]) -> None:
                with open(path, "rb") as source:
                    shutil.copyfileobj(source, f, 1 << 20)

        artifact = self._artifacts.save(f"{self.run_id}/files/{name}", fill)
        self._post(protocol.CheckpointSaved(artifact.uri, None, artifact.size, name, KIND_FILE))

    def load_checkpoint(self, *, weights_only: bool = True) -> Any | None:
        """The newest checkpoint of this run, or None: this attempt's own, else the latest of earlier
        attempts (on whichever worker they ran). A wrong key or an altered object raises."""
        uri = self._latest_checkpoint or self._earlier_checkpoint
        if uri is None:
            return None
        import torch

        with self._artifacts.open(uri) as f:
            return torch.load(f, map_location=self.device, weights_only=weights_only)

    # -- the runner's side ---------------------------------------------------------------------

    def handle_control(self, word: str) -> None:
        if word == protocol.DRAIN:
            self._stopping.set()
            self._cancelled.set()
        elif word == protocol.CANCEL:
            self._cancelled.set()
        elif word == protocol.PRUNE:
            self._prune.set()

    def close(self) -> None:
        """Stop the background sender and send whatever is still buffered. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._native is not None:
            self._native.close()
            return
        self._wake.set()
        self._flusher.join()
        self._drain()

    def _post(self, message: protocol.Message) -> None:
        if self._native is not None:
            self._native.post(protocol.encode(message))  # sent after the points logged before it
            return
        with self._lock:
            self._messages.append(message)
        self._wake.set()

    def _warn_once(self, key: str, line: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._post(protocol.LogLine(line))

    def _new_keys(self, keys: tuple[str, ...], step: int) -> bytes:
        """For the C module: a set of keys seen for the first time, checked; the JSON of its names."""
        check_keys(keys, step)
        return json.dumps(list(keys)).encode()

    def _log_slow(self, metrics: Any, step: Any) -> None:
        """For the C module: a call its fast path does not take (not a dict, a step or a value that is not
        a plain int or float, a value that is not finite), refused or cleaned here and logged again."""
        step = _step(step)
        if not isinstance(metrics, Mapping):
            raise TypeError(
                f"ctx.log takes a mapping of metric names to numbers, not {type(metrics).__name__}"
            )
        check_keys(tuple(metrics), step)
        clean: dict[str, float] = {}
        for key, value in metrics.items():
            number = _number(value, f"the value of {key!r} at step {step}")
            if math.isfinite(number):
                clean[key] = number
            else:
                self._warn_nonfinite(key, number, step)
        if clean:
            self._native.log(clean, step)

    def _warn_nonfinite(self, key: str, value: float, step: int) -> None:
        self._warn_once(
            key,
            f"ctx.log: dropped {value} for {key!r} at step {step}; non-finite values cannot "
            f"be stored (further ones of {key!r} are dropped silently)",
        )

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(2 * self._flush_interval)  # the send rule's latest
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        # Points go first: a message posted after points were logged never overtakes them.
        with self._lock:
            segments = self._buffer.take()
            messages, self._messages = self._messages, []
        if segments:
            self._drained_at = time.time()
        for columns in self._finite(Columns.of(s) for s in segments if len(s)):
            for chunk in _batched(columns.chunks(self._flush_points), self._flush_points):
                self._channel.send(protocol.metrics_frame(chunk))
        for message in messages:
            self._channel.send(message)

    def _finite(self, segments: Iterable[Columns]) -> Iterator[Columns]:
        """The segments without their NaN and infinities (JSON and GraphQL floats have no such values):
        a segment that has some is split into one per key, each without them; the first of each key is
        reported once as a log line of the run."""
        for columns in segments:
            finite = np.isfinite(columns.values)
            if finite.all():
                yield columns
                continue
            for j, key in enumerate(columns.keys):
                kept = finite[:, j]
                if not kept.all():
                    row = int(np.flatnonzero(~kept)[0])
                    self._warn_nonfinite(key, float(columns.values[row, j]), int(columns.steps[row]))
                if kept.any():
                    values = columns.values[kept, j : j + 1]
                    yield Columns((key,), columns.steps[kept], columns.times[kept], values)
            self._drain_warnings()

    def _drain_warnings(self) -> None:
        with self._lock:
            messages, self._messages = self._messages, []
        for message in messages:
            self._channel.send(message)


def _batched(chunks: Iterable[Columns], points: int) -> Iterator[list[Columns]]:
    """Consecutive pieces grouped into messages of about ``points`` points."""
    group: list[Columns] = []
    size = 0
    for chunk in chunks:
        n = chunk.values.size
        if group and size + n > points:
            yield group
            group, size = [], 0
        group.append(chunk)
        size += n
    if group:
        yield group


def _refuse(metrics: Mapping[str, Any], step: int) -> None:
    """Raise the TypeError that names the first value of ``metrics`` that is not a number."""
    for key, value in metrics.items():
        _number(value, f"the value of {key!r} at step {step}")


def follow_control(ctx: RunContext, stream: IO[bytes], on_line: Callable[[str], None] | None = None) -> None:
    """Apply control words read from ``stream`` until it ends. The end means the supervisor is gone,
    which is treated like a cancel: nobody is left to record what the run does."""
    for raw in iter(stream.readline, b""):
        word = raw.decode(errors="replace").strip()
        if on_line is not None:
            on_line(word)
        ctx.handle_control(word)
    ctx.handle_control(protocol.CANCEL)


def _step(step: Any) -> int:
    try:
        if isinstance(step, bool):
            raise TypeError
        value = operator.index(step)
    except TypeError:
        raise TypeError(f"step must be an integer, not {type(step).__name__}") from None
    if not 0 <= value <= MAX_STEP:
        raise ValueError(f"step must be a non-negative integer up to {MAX_STEP}, got {step!r}")
    return value


def _number(value: Any, what: str) -> float:
    if type(value) is float or type(value) is int:  # the common case, checked first for speed
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if callable(getattr(value, "item", None)):  # tensors (numel) and numpy arrays (size)
        numel = getattr(value, "numel", None)
        count = numel() if callable(numel) else getattr(value, "size", None)
        if count == 1:
            item = value.item()
            if isinstance(item, numbers.Real):
                return float(item)
    raise TypeError(f"{what} must be a real number or a one-element tensor, not {type(value).__name__}")
