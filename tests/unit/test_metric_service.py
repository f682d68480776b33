"""MetricService: recording batches in order, reading series downsampled, and replay after a cursor."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from ptw.domain.errors import BadInput, Forbidden, NotFound
from ptw.domain.events import MetricsRecorded, run_topic
from ptw.domain.metrics import MetricBatch, MetricPoint, Series, series_of_points
from ptw.domain.runs import Run
from ptw.domain.tenancy import Actor, Role
from tests.fixtures.memory import MemoryWorld

AT = datetime(2024, 1, 1, tzinfo=UTC)


def raw(key: str, steps: range | list[int], value: float = 1.0) -> list[MetricPoint]:
    return [MetricPoint(key, s, value + s, AT) for s in steps]


def points(key: str, steps: range | list[int], value: float = 1.0) -> list[Series]:
    return list(series_of_points(raw(key, steps, value)))


def one(key: str, step: int, value: float) -> list[Series]:
    return [Series.of(key, [step], [value], [AT.timestamp()])]


async def record(world: MemoryWorld, run_id: str, batch: list[Series]) -> MetricBatch:
    recorded = await world.metrics.record(run_id, batch)
    assert recorded is not None
    return recorded


@pytest.fixture
def world() -> MemoryWorld:
    return MemoryWorld()


@pytest.fixture
async def member(world: MemoryWorld) -> Actor:
    return await world.actor("demo", Role.MEMBER)


@pytest.fixture
async def run(world: MemoryWorld, member: Actor) -> Run:
    return await world.runs.start_run(member, (await world.workflow(member)).id)


async def test_record_numbers_batches_per_run(world: MemoryWorld, member: Actor, run: Run) -> None:
    seqs = [(await record(world, run.id, points("loss", [i]))).seq for i in range(3)]
    assert seqs == [1, 2, 3]
    other = await world.runs.start_run(member, run.workflow_id)
    assert (await record(world, other.id, points("loss", [0]))).seq == 1
    assert world.stored_run(run.id).metric_seq == 3


async def test_record_merges_metric_keys(world: MemoryWorld, run: Run) -> None:
    await world.metrics.record(run.id, points("loss", [0]) + points("acc", [0]))
    await world.metrics.record(run.id, points("loss", [1]) + points("lr", [1]))
    keys = world.stored_run(run.id).metric_keys
    assert sorted(keys) == ["acc", "loss", "lr"] and len(keys) == 3


async def test_record_publishes_the_batch_on_the_run_topic(world: MemoryWorld, run: Run) -> None:
    batch = await record(world, run.id, points("loss", [0, 1]))
    [(topics, event)] = [(t, e) for t, e in world.bus.published if isinstance(e, MetricsRecorded)]
    assert topics == (run_topic(run.id),)
    assert event == MetricsRecorded(run.project_id, batch)


async def test_record_of_nothing_stores_and_publishes_nothing(world: MemoryWorld, run: Run) -> None:
    before = len(world.bus.published)
    assert await world.metrics.record(run.id, []) is None
    assert world.stored_run(run.id).metric_seq == 0 and len(world.bus.published) == before


async def test_record_refuses_bad_points_and_unknown_runs(world: MemoryWorld, run: Run) -> None:
    with pytest.raises(BadInput):
        await world.metrics.record(run.id, [*points("loss", [0]), *one("loss", 1, math.nan)])
    assert (await world.metrics.latest([run.id])).get(run.id, []) == []
    assert world.stored_run(run.id).metric_seq == 0
    with pytest.raises(NotFound):
        await world.metrics.record("no-such-run", points("loss", [0]))


async def test_a_repeated_step_takes_the_new_value_and_seq(
    world: MemoryWorld, member: Actor, run: Run
) -> None:
    await world.metrics.record(run.id, points("loss", [0, 1], value=10.0))
    await world.metrics.record(run.id, one("loss", 1, 0.5))
    series = await world.metrics.series(member, run.id, "loss")
    assert [(p.step, p.value) for p in series.points] == [(0, 10.0), (1, 0.5)]
    replayed = await world.metrics.replay(member, run.id, after_seq=1)
    assert [(b.seq, [p.step for p in b.points()]) for b in replayed] == [(2, [1])]


async def test_log_metrics_needs_member_and_counts_distinct_points(
    world: MemoryWorld, member: Actor, run: Run
) -> None:
    logged = [*raw("loss", [0, 1]), MetricPoint("loss", 1, 7.0, AT)]
    assert await world.metrics.log_metrics(member, run.id, logged) == 2
    viewer = await world.actor("demo", Role.VIEWER)
    with pytest.raises(Forbidden):
        await world.metrics.log_metrics(viewer, run.id, raw("loss", [2]))
    with pytest.raises(NotFound):
        await world.metrics.log_metrics(await world.actor("other"), run.id, raw("loss", [2]))
    assert world.stored_run(run.id).metric_seq == 1


async def test_series_returns_every_point_when_they_fit(world: MemoryWorld, member: Actor, run: Run) -> None:
    await world.metrics.record(run.id, points("loss", range(50)) + points("acc", range(5)))
    series = await world.metrics.series(member, run.id, "loss", max_points=50)
    assert (series.total, series.last_step, [p.step for p in series.points]) == (50, 49, list(range(50)))
    later = await world.metrics.series(member, run.id, "loss", after_step=44)
    assert (later.total, [p.step for p in later.points]) == (5, [45, 46, 47, 48, 49])


async def test_series_downsamples_beyond_max_points(world: MemoryWorld, member: Actor, run: Run) -> None:
    await world.metrics.record(run.id, points("loss", range(1000)))
    series = await world.metrics.series(member, run.id, "loss", max_points=100)
    assert series.total == 1000 and series.last_step == 999
    assert 2 < len(series.points) <= 100
    assert (series.points[0].step, series.points[-1].step) == (0, 999)


async def test_series_of_a_missing_key_is_empty(world: MemoryWorld, member: Actor, run: Run) -> None:
    series = await world.metrics.series(member, run.id, "nothing")
    assert (series.total, series.points, series.last_step) == (0, [], None)


async def test_series_is_hidden_from_strangers_and_checks_max_points(
    world: MemoryWorld, member: Actor, run: Run
) -> None:
    with pytest.raises(NotFound):
        await world.metrics.series(await world.actor("other"), run.id, "loss")
    with pytest.raises(BadInput):
        await world.metrics.series(member, run.id, "loss", max_points=0)
    viewer = await world.actor("demo", Role.VIEWER)
    assert (await world.metrics.series(viewer, run.id, "loss")).total == 0


async def test_replay_returns_batches_after_the_cursor(world: MemoryWorld, member: Actor, run: Run) -> None:
    for step in range(4):
        await world.metrics.record(run.id, points("loss", [step]) + points("acc", [step]))
    replayed = await world.metrics.replay(member, run.id, after_seq=2)
    assert [b.seq for b in replayed] == [3, 4]
    assert [sorted(p.key for p in b.points()) for b in replayed] == [["acc", "loss"], ["acc", "loss"]]
    only_acc = await world.metrics.replay(member, run.id, after_seq=0, keys=["acc"])
    assert [[(p.key, p.step) for p in b.points()] for b in only_acc] == [[("acc", s)] for s in range(4)]
    assert await world.metrics.replay(member, run.id, after_seq=4) == []
    with pytest.raises(NotFound):
        await world.metrics.replay(await world.actor("other"), run.id, after_seq=0)


async def test_latest_gives_the_highest_step_per_key(world: MemoryWorld, run: Run) -> None:
    await world.metrics.record(run.id, points("loss", [3, 9, 1]) + points("acc", [2]))
    latest = await world.metrics.latest([run.id])
    assert {(p.key, p.step) for p in latest[run.id]} == {("loss", 9), ("acc", 2)}
