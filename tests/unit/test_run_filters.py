"""What a run list may be filtered by is checked before any SQL is written."""

from __future__ import annotations

import math

import pytest

from ptw.domain.errors import BadInput
from ptw.domain.run_filters import checked_condition, checked_param_filters
from ptw.domain.runs import MetricCondition


def test_param_filters_are_plain_names_and_scalar_values() -> None:
    assert checked_param_filters({"opt": "adam", "lr": 0.1, "deep": True}) == (
        ("deep", True),
        ("lr", 0.1),
        ("opt", "adam"),
    )
    for bad in ({'x"]': 1}, {"": 1}, {"a": None}, {"a": [1]}, {"a": {"b": 1}}, {"a": math.inf}):
        with pytest.raises(BadInput, match=r"filter\.params"):
            checked_param_filters(bad)
    with pytest.raises(BadInput, match="at most"):
        checked_param_filters({f"p{i}": i for i in range(21)})


def test_metric_conditions_compare_a_named_metric_with_a_finite_number() -> None:
    assert checked_condition(MetricCondition("acc", "GTE", 0.5)).op == "GTE"
    for bad in (
        MetricCondition("", "GT", 1.0),
        MetricCondition("a", "EQ", 1.0),
        MetricCondition("a", "GT", math.nan),
    ):
        with pytest.raises(BadInput):
            checked_condition(bad)
