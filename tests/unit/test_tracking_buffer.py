"""The tracking client's point buffer (bounded memory, spilled to disk, nothing lost) and its wire format
as the ingest endpoint decodes it."""

from __future__ import annotations

import numpy as np
import pytest

from ptw.api.ingest.body import COLUMNS, decode
from ptw.domain.errors import BadInput
from ptw.tracking.buffer import PointBuffer
from ptw.tracking.values import RowChecker


def decoded(buffer: PointBuffer) -> dict[str, list[int]]:
    steps: dict[str, list[int]] = {}
    while (chunk := buffer.next()) is not None:
        for key, s, v, t in decode(COLUMNS, chunk.read()):
            assert len(s) == len(v) == len(t)
            steps.setdefault(key, []).extend(s.tolist())
        buffer.sent(chunk)
    return steps


def test_points_round_trip_through_the_wire_format() -> None:
    buffer = PointBuffer(chunk_points=10)
    for step in range(7):
        buffer.add(("loss", "acc"), step, 1000.0 + step, [1.0 / (step + 1), step * 0.1])
    assert buffer.pending == 14
    chunk = buffer.next()
    assert chunk is not None and chunk.points == 10
    [(key, steps, values, stamps), *_] = decode(COLUMNS, chunk.read())
    assert key == "loss" and steps.tolist() == [0, 1, 2, 3, 4] and values[1] == 0.5 and stamps[4] == 1004.0
    buffer.sent(chunk)
    assert decoded(buffer) == {"loss": [5, 6], "acc": [5, 6]} and buffer.pending == 0


def test_beyond_its_memory_bound_the_buffer_spills_to_disk_and_loses_nothing() -> None:
    buffer = PointBuffer(chunk_points=100, max_memory_points=300)
    for step in range(2000):
        buffer.add(("x",), step, 0.0, [float(step)])
    assert buffer._memory_points <= 300 and buffer._spill_dir is not None
    assert list(buffer._spill_dir.iterdir())
    assert decoded(buffer) == {"x": list(range(2000))} and buffer.dropped == 0
    assert not list(buffer._spill_dir.iterdir())
    buffer.close()


def test_a_failed_send_keeps_the_chunk_first_in_line() -> None:
    buffer = PointBuffer(chunk_points=2)
    buffer.add(("x",), 0, 0.0, [0.0])
    buffer.add(("x",), 1, 0.0, [1.0])
    first = buffer.next()
    assert buffer.next() is first  # not sent: offered again
    buffer.sent(first)  # type: ignore[arg-type]
    assert buffer.next() is None


def test_with_memory_and_disk_full_points_are_counted_as_dropped() -> None:
    buffer = PointBuffer(chunk_points=10, max_memory_points=10, max_disk_bytes=0)
    for step in range(50):
        buffer.add(("x",), step, 0.0, [0.0])
    assert buffer.dropped == 40 and buffer.pending == 10


def test_the_json_body_takes_lists_and_bad_bodies_are_refused() -> None:
    body = b'{"series": [{"key": "loss", "steps": [0, 1], "values": [0.5, 0.25]}]}'
    [(key, steps, values, stamps)] = decode("application/json", body)
    assert key == "loss" and steps.dtype == np.int64 and values.tolist() == [0.5, 0.25] and len(stamps) == 2
    for bad in (
        b"[]",
        b"{",
        b'{"series": [{"key": 1}]}',
        b'{"series": [{"key": "k", "steps": ["a"], "values": [1]}]}',
    ):
        with pytest.raises(BadInput):
            decode("application/json", bad)
    with pytest.raises(BadInput, match="ends inside"):
        decode(COLUMNS, b'PTWC1\n{"series": [{"key": "k", "n": 5}]}\n' + b"\0" * 16)


def test_rows_are_checked_like_ctx_log() -> None:
    checker = RowChecker()
    assert checker.row({"a": 1, "b": np.float32(0.5)}, 0) == (("a", "b"), [1.0, 0.5])
    assert checker.row({"a": float("nan"), "b": 2.0}, 1) == (("b",), [2.0])
    with pytest.raises(TypeError):
        checker.row({"": 1.0}, 0)
    with pytest.raises(TypeError):
        checker.row({"a": "high"}, 0)
    with pytest.raises(TypeError):
        checker.row([1.0], 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        checker.step(-1)
