"""Metric points: what check_points refuses and dedupes, and what downsample keeps."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptw.domain.errors import BadInput
from ptw.domain.metrics import MAX_KEY_LENGTH, MAX_POINTS_PER_CALL, MetricPoint, check_points, downsample

AT = datetime(2024, 1, 1, tzinfo=UTC)


def point(key: str = "loss", step: int = 0, value: float = 1.0) -> MetricPoint:
    return MetricPoint(key=key, step=step, value=value, timestamp=AT)


def series(values: list[float]) -> list[MetricPoint]:
    return [point(step=i, value=v) for i, v in enumerate(values)]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_check_points_refuses_non_finite_values_naming_the_point(value: float) -> None:
    with pytest.raises(BadInput) as caught:
        check_points([point(step=0), point(key="acc", step=7, value=value)])
    assert caught.value.details == {"field": "points.1.value"}
    assert "acc at step 7" in caught.value.message


@pytest.mark.parametrize("key", ["", "k" * (MAX_KEY_LENGTH + 1)])
def test_check_points_refuses_empty_or_too_long_keys(key: str) -> None:
    with pytest.raises(BadInput) as caught:
        check_points([point(key=key)])
    assert caught.value.details == {"field": "points.0.key"}


def test_check_points_accepts_the_longest_key() -> None:
    assert check_points([point(key="k" * MAX_KEY_LENGTH)])[0].key == "k" * MAX_KEY_LENGTH


@pytest.mark.parametrize("step", [-1, 2**31])
def test_check_points_refuses_steps_out_of_range(step: int) -> None:
    with pytest.raises(BadInput) as caught:
        check_points([point(step=step)])
    assert caught.value.details == {"field": "points.0.step"}


def test_check_points_refuses_too_many_points_but_takes_the_maximum() -> None:
    many = [point(step=i) for i in range(MAX_POINTS_PER_CALL)]
    assert len(check_points(many)) == MAX_POINTS_PER_CALL
    with pytest.raises(BadInput, match="at most"):
        check_points([*many, point(step=MAX_POINTS_PER_CALL)])


def test_check_points_keeps_the_last_of_a_repeated_key_and_step() -> None:
    kept = check_points([point(step=1, value=1.0), point(key="acc", step=1), point(step=1, value=3.0)])
    assert sorted((p.key, p.step, p.value) for p in kept) == [("acc", 1, 1.0), ("loss", 1, 3.0)]


def test_check_points_of_nothing_is_nothing() -> None:
    assert check_points([]) == []


def test_downsample_returns_everything_when_it_fits() -> None:
    points = series([3.0, 1.0, 2.0])
    assert downsample(points, 3) == points
    assert downsample(points, 500) == points
    assert downsample([], 1) == []


@pytest.mark.parametrize("max_points", [0, -5])
def test_downsample_refuses_max_points_below_one(max_points: int) -> None:
    with pytest.raises(BadInput) as caught:
        downsample(series([1.0]), max_points)
    assert caught.value.details == {"field": "maxPoints"}


def test_downsample_keeps_a_spike_in_the_middle() -> None:
    values = [1.0] * 1000
    values[517] = 99.0
    values[733] = -50.0
    kept = downsample(series(values), 10)
    assert len(kept) <= 10
    assert {p.step for p in kept} >= {0, 517, 733, 999}


@pytest.mark.parametrize("max_points", [2, 3])
def test_downsample_to_two_or_three_keeps_the_ends(max_points: int) -> None:
    kept = downsample(series([float(i) for i in range(50)]), max_points)
    assert len(kept) == max_points
    assert (kept[0].step, kept[-1].step) == (0, 49)


def test_downsample_to_one_keeps_the_last_point() -> None:
    assert downsample(series([5.0, 6.0, 7.0]), 1) == [point(step=2, value=7.0)]


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@settings(max_examples=300, deadline=None, database=None)
@given(values=st.lists(finite, min_size=1, max_size=400), max_points=st.integers(min_value=1, max_value=60))
def test_downsample_properties(values: list[float], max_points: int) -> None:
    points = series(values)
    kept = downsample(points, max_points)
    steps = [p.step for p in kept]
    assert steps == sorted(set(steps)), "points stay in step order, once each"
    assert all(p in points for p in kept)
    if len(points) <= max_points:
        assert kept == points
        return
    assert 1 <= len(kept) <= max_points
    assert kept[-1] == points[-1]
    if max_points >= 2:
        assert kept[0] == points[0]
    if max_points >= 4:  # below that there is no room for the extremes besides the two ends
        assert min(p.value for p in kept) == min(values)
        assert max(p.value for p in kept) == max(values)
