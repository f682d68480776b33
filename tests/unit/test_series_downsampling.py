"""What the downsampling of a series keeps: every point when they fit, else the ends and each bucket's
extremes, in step order; and how a read's points and columns look."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptw.domain.errors import BadInput
from ptw.domain.series import SeriesRead, check_max_points, extremes_index


def kept(values: list[float], max_points: int) -> list[int]:
    return extremes_index(np.array(values, np.float64), max_points).tolist()


def test_everything_is_kept_when_it_fits() -> None:
    assert kept([3.0, 1.0, 2.0], 3) == [0, 1, 2] and kept([3.0], 500) == [0] and kept([], 1) == []


@pytest.mark.parametrize("max_points", [0, -5])
def test_max_points_below_one_is_refused(max_points: int) -> None:
    with pytest.raises(BadInput) as caught:
        check_max_points(max_points)
    assert caught.value.details == {"field": "maxPoints"}
    check_max_points(None)  # a whole read


def test_a_spike_in_the_middle_is_kept() -> None:
    values = [1.0] * 1000
    values[517], values[733] = 99.0, -50.0
    steps = kept(values, 10)
    assert len(steps) <= 10 and {0, 517, 733, 999} <= set(steps)


@pytest.mark.parametrize("max_points", [2, 3])
def test_two_or_three_points_keep_the_ends(max_points: int) -> None:
    steps = kept([float(i) for i in range(50)], max_points)
    assert len(steps) == max_points and (steps[0], steps[-1]) == (0, 49)


def test_one_point_is_the_last() -> None:
    assert kept([5.0, 6.0, 7.0], 1) == [2]


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@settings(max_examples=300, deadline=None, database=None)
@given(values=st.lists(finite, min_size=1, max_size=400), max_points=st.integers(min_value=1, max_value=60))
def test_downsampling_properties(values: list[float], max_points: int) -> None:
    steps = kept(values, max_points)
    assert steps == sorted(set(steps)), "points stay in step order, once each"
    if len(values) <= max_points:
        assert steps == list(range(len(values)))
        return
    assert 1 <= len(steps) <= max_points and steps[-1] == len(values) - 1
    if max_points >= 2:
        assert steps[0] == 0
    if max_points >= 4:  # below that there is no room for the extremes besides the two ends
        assert min(values[i] for i in steps) == min(values) and max(values[i] for i in steps) == max(values)


def test_a_read_as_points_and_as_columns() -> None:
    read = SeriesRead("loss", 7, np.array([2, 5]), np.array([0.5, 0.25]), np.array([1.5, 3.0]))
    assert [(p.key, p.step, p.value, p.timestamp.timestamp()) for p in read.points] == [
        ("loss", 2, 0.5, 1.5),
        ("loss", 5, 0.25, 3.0),
    ]
    assert {k: v.tolist() for k, v in read.columns().items()} == {
        "steps": [2, 5],
        "values": [0.5, 0.25],
        "timestamps": [1.5, 3.0],
    }
    assert read.last_step == 5 and read.total == 7
