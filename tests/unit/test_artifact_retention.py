"""Which checkpoints a workflow's retention keeps: the last N, the best by a metric, never a file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ptw.domain.artifacts import KIND_FILE, Retention, beyond_retention, check_artifact_name, retention_of
from ptw.domain.errors import BadInput
from ptw.domain.optimizations import Direction
from ptw.domain.runs import Checkpoint

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def checkpoint(step: int | None, kind: str = "checkpoint") -> Checkpoint:
    at = T0 + timedelta(seconds=step or 0)
    return Checkpoint(f"c{step}", "r", 1, step, f"file:///a/{step}", 10, at, f"a1-s{step}.pt", kind)


def steps(found: list[Checkpoint]) -> list[int | None]:
    return [c.step for c in found]


def test_the_last_n_are_kept_by_default() -> None:
    every = [checkpoint(s) for s in range(6)]
    assert steps(beyond_retention(every, Retention())) == [0, 1, 2]
    assert beyond_retention(every[:3], Retention()) == []


def test_the_best_by_the_metric_is_kept_in_either_direction() -> None:
    every = [checkpoint(s) for s in range(0, 10, 2)]  # steps 0 2 4 6 8
    loss = {s: abs(s - 3) for s in range(10)}  # least at step 3: the checkpoint of step 2 holds it
    keep_least = Retention(keep_last=1, best_by="loss", direction=Direction.MINIMIZE)
    assert steps(beyond_retention(every, keep_least, loss)) == [0, 4, 6]
    keep_most = Retention(keep_last=1, best_by="loss", direction=Direction.MAXIMIZE)
    assert steps(beyond_retention(every, keep_most, {s: 10.0 - s for s in range(10)})) == [2, 4, 6]
    assert steps(beyond_retention(every, keep_least, {})) == [0, 2, 4, 6]  # nothing logged: the last only


def test_files_are_never_judged_and_checkpoints_without_a_step_are_never_best() -> None:
    every = [checkpoint(None), checkpoint(1), checkpoint(2), checkpoint(3, KIND_FILE), checkpoint(4)]
    kept = Retention(keep_last=1, best_by="loss")
    assert steps(beyond_retention(every, kept, {0: 0.0, 1: 5.0, 2: 9.0})) == [None, 2]


def test_retention_and_names_are_checked() -> None:
    assert retention_of(None, " ", None) == Retention()
    with pytest.raises(BadInput, match="keepLast"):
        retention_of(0, None, None)
    assert check_artifact_name("model-v1.onnx") == "model-v1.onnx"
    for bad in ("", "../x", "a/b", ".hidden", "x" * 201):
        with pytest.raises(ValueError, match="artifact name"):
            check_artifact_name(bad)
