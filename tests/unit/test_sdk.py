"""The RunContext SDK: batching, flushing, value checks, checkpoints, control; each logging test on an
in-memory stream (pure Python) and on a real pipe (the C module, executors/_metric_log.c)."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import math
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ptw.executors import protocol
from ptw.executors.metric_buffer import Columns
from ptw.executors.sdk import MessageChannel, RunContext, checkpoint_path, follow_control


class Sink(io.RawIOBase):
    """The supervisor's end of the message pipe, in memory: the SDK logs in pure Python to it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()

    @property
    def stream(self) -> Any:
        """What the RunContext's channel writes to."""
        return self

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        with self.lock:
            self.data += bytes(b)
        return len(b)

    def messages(self, kind: str | None = None) -> list[Any]:
        self.pull()
        with self.lock:
            found = list(protocol.frames(bytes(self.data)))
        return [m for m in found if kind is None or protocol.KINDS[type(m)] == kind]

    def pull(self) -> None:
        """Read what the pipe holds (nothing to do in memory)."""

    def points(self) -> list[list[Any]]:
        """[key, step, value, time] of every point sent, in the order logged (by step, then key)."""
        return [point for m in self.messages(protocol.METRICS) for point in _rows(m.series)]


def _rows(series: Any) -> list[list[Any]]:
    points = [
        [s.key, *p]
        for s in series
        for p in zip(s.steps.tolist(), s.values.tolist(), s.timestamps.tolist(), strict=True)
    ]
    return sorted(points, key=lambda p: p[1])  # stable: keys stay in their order within a step


class PipeSink(Sink):
    """The supervisor's end as a real pipe, read all along as the supervisor does: with a file descriptor to
    write, the SDK logs through its C module (executors/_metric_log.c), whose sender thread writes it."""

    def __init__(self) -> None:
        super().__init__()
        self._read, write = os.pipe()
        os.set_blocking(self._read, False)
        self._stream = os.fdopen(write, "wb")
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_all_along, daemon=True)
        self._reader.start()

    @property
    def stream(self) -> Any:
        return self._stream

    def _read_all_along(self) -> None:
        while not self._stop.is_set():
            select.select([self._read], [], [], 0.01)
            self.pull()

    def pull(self) -> None:
        """Everything written so far (read under the lock: nothing is held between read and kept)."""
        with self.lock:
            while True:
                try:
                    chunk = os.read(self._read, 1 << 20)
                except BlockingIOError:
                    return
                if not chunk:
                    return
                self.data += chunk

    def close(self) -> None:
        self._stop.set()
        self._reader.join()
        self._stream.close()
        os.close(self._read)
        super().close()


@pytest.fixture(params=["python", "c"])
def sink(request: pytest.FixtureRequest) -> Iterator[Sink]:
    """Every test of the SDK runs on both ways of logging: pure Python, and the C module."""
    made = Sink() if request.param == "python" else PipeSink()
    yield made
    made.close()


def uses_c(ctx: RunContext) -> bool:
    return ctx._native is not None


@pytest.fixture
def make_ctx(sink: Sink, tmp_path: Path) -> Iterator[Callable[..., RunContext]]:
    made: list[RunContext] = []

    def make(**overrides: Any) -> RunContext:
        options: dict[str, Any] = {
            "run_id": "run-1",
            "attempt": 1,
            "params": {"lr": 0.1},
            "device": torch.device("cpu"),
            "artifacts_dir": tmp_path / "artifacts",
            "channel": MessageChannel(sink.stream),
            "flush_interval": 60.0,  # only explicit triggers flush, unless a test says otherwise
        }
        ctx = RunContext(**{**options, **overrides})
        assert uses_c(ctx) == isinstance(sink, PipeSink)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


def eventually(condition: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_log_is_buffered_and_everything_is_sent_on_close_in_order(make_ctx, sink: Sink) -> None:
    ctx = make_ctx()
    for step in range(3):
        ctx.log({"loss": 1.0 / (step + 1), "acc": step}, step=step)
    ctx.report(0.5, step=2)
    ctx.close()
    kinds = [protocol.KINDS[type(m)] for m in sink.messages()]
    # The first row may go at once (a row after a quiet spell does), the rest together; the report after.
    assert kinds[-1] == protocol.REPORT and set(kinds[:-1]) == {protocol.METRICS} and len(kinds) <= 3
    assert [(k, s, v) for k, s, v, _ in sink.points()] == [
        ("loss", 0, 1.0),
        ("acc", 0, 0.0),
        ("loss", 1, 0.5),
        ("acc", 1, 1.0),
        ("loss", 2, 1 / 3),
        ("acc", 2, 2.0),
    ]
    assert sink.messages(protocol.REPORT) == [protocol.Report(0.5, 2)]


def test_a_full_buffer_is_sent_without_waiting_for_the_interval(make_ctx, sink: Sink) -> None:
    ctx = make_ctx(flush_points=10)
    for step in range(25):
        ctx.log({"x": step}, step=step)
    # Whenever the sender took them, at most flush_points - 1 points wait for the interval (60 s here).
    eventually(lambda: len(sink.points()) >= 25 - 9)
    assert all(len(_rows(m.series)) <= 10 for m in sink.messages(protocol.METRICS))
    ctx.close()
    assert [s for _, s, _, _ in sink.points()] == list(range(25))


def test_points_are_sent_every_interval(make_ctx, sink: Sink) -> None:
    ctx = make_ctx(flush_interval=0.02)
    ctx.log({"x": 1.0}, step=0)
    eventually(lambda: len(sink.points()) == 1, within=2.0)


def test_non_finite_values_are_dropped_with_one_warning_per_key(make_ctx, sink: Sink) -> None:
    ctx = make_ctx()
    ctx.log({"loss": math.nan, "acc": 1.0}, step=0)
    ctx.log({"loss": math.inf}, step=1)
    ctx.log({"loss": 2.0, "grad": -math.inf}, step=2)
    ctx.close()
    assert [(k, s) for k, s, _, _ in sink.points()] == [("acc", 0), ("loss", 2)]
    warnings = [m.line for m in sink.messages(protocol.LOG)]
    assert len(warnings) == 2
    assert "'loss' at step 0" in warnings[0] and "'grad' at step 2" in warnings[1]


@pytest.mark.parametrize(
    ("metrics", "step", "error", "text"),
    [
        ({"ok": 1.0, "lr": "0.1"}, 0, TypeError, "'lr' at step 0 must be a real number"),
        ({"ok": 1.0, "lr": None}, 0, TypeError, "not NoneType"),
        ({"v": torch.ones(3)}, 0, TypeError, "one-element tensor"),
        ({"v": 1 + 2j}, 0, TypeError, "not complex"),
        ({"": 1.0}, 0, TypeError, "1-200 characters"),
        ({"v": 1.0}, 1.5, TypeError, "step must be an integer"),
        ({"v": 1.0}, -1, ValueError, "non-negative"),
        ([("v", 1.0)], 0, TypeError, "mapping"),
    ],
)
def test_bad_values_raise_at_the_call_and_nothing_of_that_call_is_kept(
    make_ctx, sink: Sink, metrics: Any, step: Any, error: type[Exception], text: str
) -> None:
    ctx = make_ctx()
    with pytest.raises(error, match=text):
        ctx.log(metrics, step=step)
    ctx.close()
    assert sink.points() == []


def test_tensors_and_numpy_numbers_are_accepted(make_ctx, sink: Sink) -> None:
    ctx = make_ctx()
    ctx.log(
        {"t": torch.tensor(0.25), "t1": torch.tensor([0.5]), "n": np.float32(2.0), "i": np.int64(3)}, step=1
    )
    ctx.log({"a": np.array(4.0)}, step=np.int64(2))
    ctx.close()
    assert [(k, s, v) for k, s, v, _ in sink.points()] == [
        ("t", 1, 0.25),
        ("t1", 1, 0.5),
        ("n", 1, 2.0),
        ("i", 1, 3.0),
        ("a", 2, 4.0),
    ]


def test_checkpoints_are_saved_atomically_reported_and_loaded(make_ctx, sink: Sink, tmp_path: Path) -> None:
    ctx = make_ctx()
    assert ctx.load_checkpoint() is None
    ctx.save_checkpoint({"w": torch.arange(3.0), "step": 3}, step=3)
    ctx.close()
    path = tmp_path / "artifacts" / "run-1" / "a1-s3.pt"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a1-s3.pt"]  # no temporary file left
    [message] = sink.messages(protocol.CHECKPOINT)
    assert message == protocol.CheckpointSaved(path.as_uri(), 3, path.stat().st_size)
    assert torch.equal(ctx.load_checkpoint()["w"], torch.arange(3.0))

    later = make_ctx(attempt=2, checkpoint_uri=message.uri)
    assert later.load_checkpoint()["step"] == 3  # an earlier attempt's checkpoint, given at claim


def test_a_failed_save_leaves_the_previous_checkpoint_whole(make_ctx, sink: Sink, tmp_path: Path) -> None:
    ctx = make_ctx()
    ctx.save_checkpoint({"step": 1}, step=1)
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises for a local function
        ctx.save_checkpoint({"step": 2, "bad": lambda: None}, step=2)
    ctx.close()
    run_dir = tmp_path / "artifacts" / "run-1"
    assert sorted(p.name for p in run_dir.iterdir()) == ["a1-s1.pt"]
    assert ctx.load_checkpoint() == {"step": 1}
    assert len(sink.messages(protocol.CHECKPOINT)) == 1


def test_checkpoint_without_step_gets_a_numbered_name(make_ctx, sink: Sink, tmp_path: Path) -> None:
    ctx = make_ctx(attempt=2)
    ctx.save_checkpoint({"a": 1})
    ctx.save_checkpoint({"a": 2})
    ctx.close()
    assert [checkpoint_path(m.uri).name for m in sink.messages(protocol.CHECKPOINT)] == [
        "a2-n1.pt",
        "a2-n2.pt",
    ]
    assert [m.step for m in sink.messages(protocol.CHECKPOINT)] == [None, None]
    assert ctx.load_checkpoint() == {"a": 2}


def test_control_words_set_the_prune_and_cancel_flags(make_ctx) -> None:
    ctx = make_ctx()
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as stream, os.fdopen(write_fd, "wb", buffering=0) as control:
        listener = threading.Thread(target=follow_control, args=(ctx, stream), daemon=True)
        listener.start()
        control.write(b"prune\n")
        eventually(ctx.should_prune)
        assert not ctx.cancelled
        control.write(b"cancel\n")
        eventually(lambda: ctx.cancelled)
    listener.join(2)


def test_the_end_of_the_control_stream_means_cancel(make_ctx) -> None:
    ctx = make_ctx()
    follow_control(ctx, io.BytesIO(b"unknown\n"))
    assert ctx.cancelled and not ctx.should_prune()


def test_report_drops_non_finite_values(make_ctx, sink: Sink) -> None:
    ctx = make_ctx()
    ctx.report(math.nan, step=1)
    ctx.report(0.25, step=2)
    ctx.close()
    assert sink.messages(protocol.REPORT) == [protocol.Report(0.25, 2)]
    assert len(sink.messages(protocol.LOG)) == 1


def test_a_report_may_say_which_metric_it_is(make_ctx, sink: Sink) -> None:
    ctx = make_ctx()
    ctx.report(0.5, step=3, metric="val_loss")
    with pytest.raises(TypeError, match="metric"):
        ctx.report(0.5, step=3, metric="")
    ctx.close()
    reported = protocol.Report(0.5, 3, "val_loss")
    assert sink.messages(protocol.REPORT) == [reported]


def test_a_vanished_supervisor_does_not_break_training(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    channel = MessageChannel(os.fdopen(write_fd, "wb"))
    ctx = RunContext(run_id="r", attempt=1, params={}, device="cpu", artifacts_dir=tmp_path, channel=channel)
    ctx.log({"x": 1.0}, step=0)
    ctx.close()
    assert channel.broken


def test_summaries_are_made_json_safe() -> None:
    summary = {
        "t": torch.tensor(1.5),
        "v": torch.tensor([1, 2]),
        "n": np.float64(0.25),
        "nan": math.nan,
        "nested": {1: (np.int32(2), {"s"})},
        "obj": object(),
    }
    safe = protocol.json_safe(summary)
    json.dumps(safe, allow_nan=False)
    assert safe["t"] == 1.5 and safe["v"] == [1, 2] and safe["n"] == 0.25 and safe["nan"] == "nan"
    assert safe["nested"] == {"1": [2, ["s"]]}
    assert safe["obj"].startswith("<object object")


def test_importing_the_sdk_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, executors.sdk; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def segment(keys: tuple[str, ...], rows: list[tuple[int, float, list[float]]]) -> Columns:
    return Columns(
        keys,
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
    )


def test_metrics_travel_in_packed_segments_and_decode_to_series() -> None:
    segments = [
        segment(("loss", "acc"), [(1, 10.0, [0.5, 0.25]), (2, 11.0, [0.4, 0.5])]),
        segment(("loss",), [(3, 12.0, [0.3])]),
    ]
    [decoded] = protocol.frames(protocol.metrics_frame(segments))
    assert isinstance(decoded, protocol.Metrics)
    assert _rows(list(decoded.series)) == [
        ["loss", 1, 0.5, 10.0], ["acc", 1, 0.25, 10.0],
        ["loss", 2, 0.4, 11.0], ["acc", 2, 0.5, 11.0],
        ["loss", 3, 0.3, 12.0],
    ]  # fmt: skip


def test_a_malformed_metrics_segment_is_refused() -> None:
    frame = protocol.metrics_frame([segment(("loss", "acc"), [(1, 10.0, [0.5, 0.25])])])
    start = len(protocol.MAGIC) + protocol.SIZES.size
    head_size, _ = protocol.SIZES.unpack_from(frame, len(protocol.MAGIC))
    head = frame[start : start + head_size]
    body = frame[start + head_size :]
    with pytest.raises(ValueError, match="longer"):
        protocol.decode(head.replace(b'"acc"', b"").replace(b",]", b"]"), body)  # one key fewer
    with pytest.raises(ValueError, match="shorter"):
        protocol.decode(head, body[:-8])
    with pytest.raises(ValueError):
        protocol.decode(b'{"kind": "no such kind"}')
    assert protocol.decode(head, body) == protocol.Metrics(protocol.decode(head, body).series)


def test_every_message_travels_typed() -> None:
    sent: list[protocol.Message] = [
        protocol.Ready(12, "cuda:0", "NVIDIA H100"),
        protocol.Started("cpu"),
        protocol.Report(0.5, 3, "val_loss"),
        protocol.CheckpointSaved("file:///c.pt", None, 10),
        protocol.LogLine("hello"),
        protocol.Result({"accuracy": 0.9}),
        protocol.Failed("ValueError", "bad", "Traceback...", protocol.PHASE_RUN),
    ]
    assert list(protocol.frames(b"".join(protocol.encode(m) for m in sent))) == sent


@pytest.mark.parametrize(
    ("key", "error", "text"),
    [
        ("", TypeError, "1-200 characters"),
        ("k" * 201, ValueError, "1-200 characters"),
        ("lo\x00ss", ValueError, "NUL"),
        ("lo\ud800ss", ValueError, "unpaired surrogate"),
        (7, TypeError, "strings, not int"),
    ],
)
def test_a_name_that_cannot_be_stored_is_refused_at_the_call_and_the_good_rows_are_sent(
    make_ctx, sink: Sink, key: Any, error: type[Exception], text: str
) -> None:
    ctx = make_ctx()
    ctx.log({"loss": 1.0}, step=0)
    with pytest.raises(error, match=text) as caught:
        ctx.log({"acc": 0.5, key: 1.0}, step=1)
    assert "at step 1" in str(caught.value)
    ctx.log({"loss": 2.0}, step=2)
    ctx.close()
    assert [(k, s) for k, s, _, _ in sink.points()] == [("loss", 0), ("loss", 2)]


@pytest.mark.parametrize("step", [-1, 2**31, 2**63])
def test_a_step_outside_the_stored_range_is_refused_at_the_call(make_ctx, sink: Sink, step: int) -> None:
    ctx = make_ctx()
    with pytest.raises(ValueError, match=str(step)):
        ctx.log({"loss": 1.0}, step=step)
    ctx.log({"loss": 1.0}, step=2**31 - 1)
    ctx.close()
    assert [s for _, s, _, _ in sink.points()] == [2**31 - 1]


def test_a_bad_value_after_good_ones_of_the_same_keys_keeps_the_good_rows(make_ctx, sink: Sink) -> None:
    ctx = make_ctx()
    ctx.log({"loss": 1.0, "acc": 0.5}, step=0)
    with pytest.raises(TypeError, match="'acc' at step 1"):
        ctx.log({"loss": 2.0, "acc": "high"}, step=1)
    ctx.log({"loss": 3.0, "acc": 0.75}, step=2)
    ctx.close()
    assert [(k, s, v) for k, s, v, _ in sink.points()] == [
        ("loss", 0, 1.0), ("acc", 0, 0.5), ("loss", 2, 3.0), ("acc", 2, 0.75),
    ]  # fmt: skip


async def test_the_supervisor_skips_what_is_no_frame_and_reads_on() -> None:
    """Ranks of a distributed run share the pipe: a frame cut by another's write costs the messages around
    it, never the rest of the stream."""
    import types

    from ptw.executors.warm_runner import WarmRunner

    reader = asyncio.StreamReader()
    first, second, third = (protocol.encode(protocol.LogLine(f"line {i}")) for i in range(3))
    reader.feed_data(first + b"garbage" + second[:9] + third + protocol.encode(protocol.Started("cpu")))
    reader.feed_eof()
    runner = WarmRunner(types.SimpleNamespace(pid=1), reader)  # type: ignore[arg-type]
    read = [m async for m in runner.messages()]
    assert read[0] == protocol.LogLine("line 0") and read[-1] == protocol.Started("cpu")
    assert protocol.LogLine("line 1") not in read


def test_every_good_point_arrives_whatever_the_keys_and_the_bad_calls_among_them(
    make_ctx, sink: Sink
) -> None:
    ctx = make_ctx(flush_points=500, flush_interval=0.005)
    wide = [f"w{i}" for i in range(100)]  # more keys than the C module keeps on its stack
    expected = []
    for step in range(3000):
        if step % 7 == 0:
            row = {key: step + i / 100 for i, key in enumerate(wide)}
        elif step % 3 == 0:
            row = {"loss": step / 2, "acc": float(step)}
        else:
            row = {"loss": step / 2}
        ctx.log(row, step=step)
        expected += [(key, step, value) for key, value in row.items()]
        if step % 500 == 0:
            with pytest.raises(ValueError, match="NUL"):
                ctx.log({"loss": 1.0, "bad\x00": 1.0}, step=step)
            with pytest.raises(ValueError, match="non-negative"):
                ctx.log({"loss": 1.0}, step=-step - 1)
            with pytest.raises(TypeError, match="real number"):
                ctx.log({"loss": 1.0, "text": "x"}, step=step)
    ctx.close()
    assert [(k, s, v) for k, s, v, _ in sink.points()] == expected
    frames = sink.messages(protocol.METRICS)
    assert all(sum(len(s.steps) for s in m.series) <= 500 for m in frames)


def test_a_message_never_overtakes_the_points_logged_before_it(make_ctx, sink: Sink) -> None:
    ctx = make_ctx(flush_interval=0.001)
    for step in range(2000):
        ctx.log({"loss": float(step)}, step=step)
        if step % 100 == 99:
            ctx.report(float(step), step=step)
    ctx.close()
    logged = -1
    for message in sink.messages():
        if isinstance(message, protocol.Metrics):
            logged = max(logged, *(int(s.steps.max()) for s in message.series))
        elif isinstance(message, protocol.Report):
            assert logged >= message.step
    assert logged == 1999 and len(sink.messages(protocol.REPORT)) == 20


def test_rows_logged_from_several_threads_all_arrive(make_ctx, sink: Sink) -> None:
    ctx = make_ctx(flush_interval=0.002, flush_points=1000)

    def log(thread: int) -> None:
        for step in range(5000):
            ctx.log({f"t{thread}": float(step), "shared": float(thread)}, step=step)

    threads = [threading.Thread(target=log, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctx.close()
    points = sink.points()
    assert len(points) == 4 * 5000 * 2
    for thread in range(4):
        assert sorted(s for k, s, _, _ in points if k == f"t{thread}") == list(range(5000))


# The C module only: the pure-Python buffer's lock, if its sender held it at the fork, would hang the child.
@pytest.mark.parametrize("sink", ["c"], indirect=True)
def test_a_forked_child_neither_hangs_nor_sends_on_its_parents_pipe(make_ctx, sink: Sink) -> None:
    ctx = make_ctx(flush_interval=0.001)
    ctx.log({"parent": 1.0}, step=0)
    pid = os.fork()
    if pid == 0:  # a DataLoader worker, say: the sender thread is the parent's
        try:
            for step in range(1000):
                ctx.log({"child": 1.0}, step=step)
            ctx.close()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    ctx.log({"parent": 2.0}, step=1)
    ctx.close()
    assert [(k, s) for k, s, _, _ in sink.points()] == [("parent", 0), ("parent", 1)]


def test_a_context_dropped_without_close_is_freed_and_sends_what_it_held(tmp_path: Path) -> None:
    import weakref

    sink = PipeSink()
    ctx = RunContext(
        run_id="r",
        attempt=1,
        params={},
        device="cpu",
        artifacts_dir=tmp_path,
        channel=MessageChannel(sink.stream),
        flush_interval=60.0,
    )
    assert uses_c(ctx)
    ctx.log({"x": 1.0}, step=0)
    ctx.log({"x": 2.0}, step=1)
    gone = weakref.ref(ctx)
    del ctx
    gc.collect()
    assert gone() is None  # the context and its C log hold each other; the collector frees both
    assert [(k, s, v) for k, s, v, _ in sink.points()] == [("x", 0, 1.0), ("x", 1, 2.0)]
    sink.close()


def test_the_c_logging_module_is_built_here() -> None:
    """pip builds executors/_metric_log.c where a C compiler is found (this machine, CI, the executor image);
    without it ctx.log works in pure Python, several times slower (bench/overhead.py)."""
    from ptw.executors import _metric_log

    assert callable(_metric_log.MetricLog.log)
