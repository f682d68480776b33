"""Metric batches: what checked refuses and dedupes, and what sifted leaves out."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from ptw.domain.errors import BadInput
from ptw.domain.metrics import (
    MAX_KEY_LENGTH,
    MAX_POINTS_PER_CALL,
    MetricBatch,
    MetricPoint,
    Series,
    checked,
    series_of_points,
    sifted,
)

AT = datetime(2024, 1, 1, tzinfo=UTC)


def point(key: str = "loss", step: int = 0, value: float = 1.0) -> MetricPoint:
    return MetricPoint(key=key, step=step, value=value, timestamp=AT)


def series(values: list[float]) -> list[MetricPoint]:
    return [point(step=i, value=v) for i, v in enumerate(values)]


def batch(*points: MetricPoint) -> tuple[Series, ...]:
    return series_of_points(points)


def flat(series: tuple[Series, ...]) -> list[tuple[str, int, float]]:
    return sorted((p.key, p.step, p.value) for s in series for p in s.points())


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_checked_refuses_non_finite_values_naming_key_and_step(value: float) -> None:
    with pytest.raises(BadInput) as caught:
        checked(batch(point(step=0), point(key="acc", step=7, value=value)))
    assert caught.value.details == {"field": "points.value"}
    assert "'acc' at step 7" in caught.value.message


@pytest.mark.parametrize("key", ["", "k" * (MAX_KEY_LENGTH + 1), "lo\x00ss", "lo\ud800ss"])
def test_checked_refuses_keys_that_cannot_be_stored(key: str) -> None:
    with pytest.raises(BadInput) as caught:
        checked(batch(point(key=key)))
    assert caught.value.details == {"field": "points.key"}


def test_checked_accepts_the_longest_key_and_other_scripts() -> None:
    assert [s.key for s in checked(batch(point(key="k" * MAX_KEY_LENGTH)))] == ["k" * MAX_KEY_LENGTH]
    assert [s.key for s in checked(batch(point(key="précision/🎯")))] == ["précision/🎯"]


@pytest.mark.parametrize("step", [-1, 2**31])
def test_checked_refuses_steps_out_of_range(step: int) -> None:
    with pytest.raises(BadInput) as caught:
        checked(batch(point(step=step)))
    assert caught.value.details == {"field": "points.step"}
    assert f"at step {step}" in caught.value.message


def test_checked_refuses_too_many_points_but_takes_the_maximum() -> None:
    many = Series.of(
        "loss", range(MAX_POINTS_PER_CALL), [1.0] * MAX_POINTS_PER_CALL, [0.0] * MAX_POINTS_PER_CALL
    )
    assert len(checked([many])[0]) == MAX_POINTS_PER_CALL
    with pytest.raises(BadInput, match="at most"):
        checked([many, Series.of("acc", [0], [1.0], [0.0])])


def test_checked_keeps_the_last_of_a_repeated_key_and_step() -> None:
    kept = checked(batch(point(step=1, value=1.0), point(key="acc", step=1), point(step=1, value=3.0)))
    assert flat(kept) == [("acc", 1, 1.0), ("loss", 1, 3.0)]


def test_checked_joins_the_parts_of_a_key_in_step_order() -> None:
    parts = [
        Series.of("loss", [3, 1], [3.0, 1.0], [0.0, 0.0]),
        Series.of("loss", [2, 3], [2.0, 9.0], [0.0, 0.0]),
    ]
    (joined,) = checked(parts)
    assert (joined.steps.tolist(), joined.values.tolist()) == ([1, 2, 3], [1.0, 2.0, 9.0])


def test_checked_of_nothing_is_nothing() -> None:
    assert checked([]) == ()


def test_sifted_leaves_out_only_the_bad_points_and_says_which() -> None:
    good = Series.of("loss", [0, 1, 2**31, 3], [1.0, math.nan, 2.0, 3.0], [0.0] * 4)
    kept, problems = sifted(
        [good, Series.of("a\x00b", [0], [1.0], [0.0]), Series.of("acc", [5], [0.5], [0.0])]
    )
    assert flat(kept) == [("acc", 5, 0.5), ("loss", 0, 1.0), ("loss", 3, 3.0)]
    assert len(problems) == 2
    assert "2 points of 'loss' left out (the first at step 1)" in problems
    assert any("NUL" in p for p in problems)


def test_series_round_trip_through_points() -> None:
    points = [point(step=2, value=0.5), point(key="acc", step=2, value=0.25), point(step=3, value=0.4)]
    assert list(MetricBatch.of_points("r", 1, points).points()) == [points[0], points[2], points[1]]


@pytest.mark.parametrize("at", [-1.0, 1e300, math.nan])
def test_checked_refuses_a_timestamp_that_is_no_time(at: float) -> None:
    with pytest.raises(BadInput) as caught:
        checked([Series.of("loss", [3], [1.0], [at])])
    assert caught.value.details == {"field": "points.timestamp"}
    assert "'loss' at step 3" in caught.value.message
