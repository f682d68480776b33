"""The API's JSON encoder writes numpy columns as lists of the same numbers, and the rest as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ptw.api.json_encoding import encode_json


def test_numpy_columns_read_back_as_the_same_numbers() -> None:
    steps = np.arange(200_007, dtype=np.int64)
    values = np.random.default_rng(1).normal(size=len(steps)) * 1e-300
    values[:3] = [0.1, -0.0, 1e22]
    data = {
        "data": {"s": {"loss": {"steps": steps, "values": values, "timestamps": np.array([], np.float64)}}}
    }
    decoded = json.loads(encode_json(data))["data"]["s"]["loss"]
    assert decoded["steps"] == steps.tolist() and decoded["timestamps"] == []
    assert decoded["values"] == values.tolist()


def test_arrays_orjson_cannot_write_itself_still_encode() -> None:
    strided = np.arange(10, dtype=np.float64)[::2]  # not C-contiguous
    small = np.array([1, 2], dtype=np.uint16)
    assert json.loads(encode_json({"a": strided, "b": [small]})) == {"a": [0, 2, 4, 6, 8], "b": [[1, 2]]}


def test_plain_answers_read_back_as_json_writes_them() -> None:
    data = {"x": [1, 2.5, "é", "\x00", True, None], "y": {"z": 1e100}}
    assert json.loads(encode_json(data)) == data
    with pytest.raises(TypeError):
        encode_json({"x": object()})


def test_integers_past_64_bits_are_written_exactly_beside_numpy_columns() -> None:
    # A user's JSON value (run params, a summary) may hold any integer; orjson stops at 64 bits.
    data = {"params": {"seed": 10**30, "neg": -(2**70)}, "steps": np.arange(3), "n": np.int64(7)}
    assert json.loads(encode_json(data)) == {
        "params": {"seed": 10**30, "neg": -(2**70)},
        "steps": [0, 1, 2],
        "n": 7,
    }
