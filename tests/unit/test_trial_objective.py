"""The ObjectiveWatch tells the optimizer the named metric only: logged points of its key, or reports that
name it (which then win), never reports of other metrics or reports that name none."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ptw.domain.metrics import MetricPoint, Series, series_of_points
from ptw.domain.runs import RunJob
from ptw.domain.trials import MAX_INTERMEDIATE, thinned
from ptw.executors.trial_objective import FROM_LOGS, FROM_REPORTS, ObjectiveWatch

AT = datetime(2026, 1, 1, tzinfo=UTC)


class Advisor:
    def __init__(self, prune_at: int | None = None) -> None:
        self.told: list[tuple[dict[int, float], str]] = []
        self.missing: list[list[str]] = []
        self.prune_at = prune_at

    async def observe(self, job: RunJob, values: dict[int, float], source: str) -> bool:
        self.told.append((dict(values), source))
        return self.prune_at is not None and max(values) >= self.prune_at

    async def objective_missing(self, job: RunJob, logged: Sequence[str]) -> None:
        self.missing.append(list(logged))


def job(objective: str | None) -> RunJob:
    return RunJob("r", "p", 1, "m:f", {}, "cpu", None, objective=objective)


def points(step: int, **values: float) -> tuple[Series, ...]:
    return series_of_points(MetricPoint(key, step, value, AT) for key, value in values.items())


async def test_logged_points_of_the_objective_are_told_and_others_are_not() -> None:
    advisor = Advisor(prune_at=3)
    watch = ObjectiveWatch(job("loss"), advisor, interval=0)
    assert not await watch.logged(points(0, loss=4.0, accuracy=0.1))
    assert not await watch.report(None, 99.0, 0)  # names no metric: not the objective
    assert not await watch.report("decoy", 98.0, 0)
    assert await watch.logged(points(3, loss=1.0, accuracy=0.9))
    await watch.close(final=True)
    assert advisor.told == [({0: 4.0}, FROM_LOGS), ({3: 1.0}, FROM_LOGS)]
    assert advisor.missing == [] and watch.unnamed_reports == 1


async def test_reports_naming_the_objective_win_over_its_logged_points() -> None:
    advisor = Advisor()
    watch = ObjectiveWatch(job("val_loss"), advisor, interval=60)
    await watch.logged(points(0, val_loss=2.0))  # told: the first values go at once
    await watch.logged(points(100, val_loss=1.5))  # held back by the interval...
    await watch.report("val_loss", 1.4, 1)  # ...and dropped: reports count epochs, not steps
    await watch.logged(points(200, val_loss=1.0))
    await watch.close(final=True)
    assert advisor.told == [({0: 2.0}, FROM_LOGS), ({1: 1.4}, FROM_REPORTS)]


async def test_an_attempt_that_never_logs_its_objective_says_what_it_logged() -> None:
    advisor = Advisor()
    watch = ObjectiveWatch(job("val_acc"), advisor)
    await watch.logged(points(0, loss=1.0, accuracy=0.5))
    await watch.close(final=False)  # retried elsewhere: not yet a verdict
    assert advisor.missing == []
    await watch.close(final=True)
    assert advisor.missing == [["accuracy", "loss"]] and advisor.told == []


async def test_a_run_that_is_no_trial_tells_nothing() -> None:
    advisor = Advisor()
    watch = ObjectiveWatch(job(None), advisor)
    assert not watch.active
    await watch.logged(points(0, loss=1.0))
    await watch.close(final=True)
    assert advisor.told == [] and advisor.missing == []


def test_long_series_keep_like_steps_and_the_newest() -> None:
    values = {step: float(step) for step in range(10 * MAX_INTERMEDIATE + 3)}
    kept = thinned(values)
    assert len(kept) <= MAX_INTERMEDIATE + 1
    assert max(kept) == max(values)
    stride = min(s for s in kept if s > 0)
    assert all(s % stride == 0 for s in kept if s != max(values))
    assert thinned({1: 1.0}) == {1: 1.0}
