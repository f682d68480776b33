"""The API's JSON encoder writes numpy columns as json.dumps writes lists, and the rest as json does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ptw.api.json_encoding import CHUNK, encode_json


def test_numpy_columns_read_back_as_the_same_numbers() -> None:
    steps = np.arange(CHUNK * 2 + 7, dtype=np.int64)
    values = np.random.default_rng(1).normal(size=len(steps)) * 1e-300
    values[:3] = [0.1, -0.0, 1e22]
    data = {
        "data": {"s": {"loss": {"steps": steps, "values": values, "timestamps": np.array([], np.float64)}}}
    }
    decoded = json.loads(encode_json(data))["data"]["s"]["loss"]
    assert decoded["steps"] == steps.tolist() and decoded["timestamps"] == []
    assert decoded["values"] == values.tolist()


def test_strings_that_look_like_placeholders_stay_strings() -> None:
    data = {"a": "\\u00000\\u0000", "b": [np.array([1, 2])], "c": "\x001\x00", "d": None}
    assert json.loads(encode_json(data)) == {
        "a": "\\u00000\\u0000",
        "b": [[1, 2]],
        "c": "\x001\x00",
        "d": None,
    }


def test_plain_answers_are_what_json_dumps_writes() -> None:
    data = {"x": [1, 2.5, "é", True, None], "y": {"z": 1e100}}
    assert encode_json(data) == json.dumps(data, separators=(",", ":"))
    with pytest.raises(TypeError):
        encode_json({"x": object()})
