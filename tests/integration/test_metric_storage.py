"""Block storage of metric points, on SQLite and PostgreSQL: merge on write (the newest attempt wins),
replay by seq, reads downsampled from block summaries, latest values and counts."""

from __future__ import annotations

import asyncio

import numpy as np
from sqlalchemy import text

from ptw.domain.metrics import MetricBatch, MetricPoint, Series
from ptw.infra.db import Database
from ptw.infra.db.metric_blocks import BLOCK_STEPS, MAX_SEGMENTS
from ptw.infra.db.unit_of_work import SqlUnitOfWork
from tests.integration.test_repositories import a_run, add_runs, at, point, seed


def batch(run_id: str, seq: int, steps: range | list[int], value: float | None = None) -> MetricBatch:
    values = [float(s) if value is None else value for s in steps]
    return MetricBatch(run_id, seq, (Series.of("loss", steps, values, [at(s).timestamp() for s in steps]),))


async def new_run(uow_factory: SqlUnitOfWork.Factory) -> str:
    project, workflow = await seed(uow_factory)
    run = a_run(project, workflow)
    await add_runs(uow_factory, run)
    return run.id


async def test_a_resumed_attempt_keeps_one_point_per_step_the_newest(
    uow_factory: SqlUnitOfWork.Factory,
) -> None:
    run_id = await new_run(uow_factory)
    async with uow_factory() as uow:
        await uow.metrics.add_batch(batch(run_id, 1, range(3000), 1.0))
        await uow.metrics.add_batch(batch(run_id, 3, range(2000, 4000), 3.0))
        await uow.commit()
    async with uow_factory() as uow:  # a batch of the first attempt reaching storage last
        await uow.metrics.add_batch(batch(run_id, 2, range(1500, 2500), 2.0))
        await uow.commit()
    async with uow_factory() as uow:
        whole = await uow.metrics.read(run_id, "loss")
        assert await uow.metrics.count(run_id, "loss") == 4000
        assert await uow.metrics.count(run_id, "loss", after_step=1999) == 2000
        replayed = await uow.metrics.batches_after(run_id, 0)
        between = await uow.metrics.batches_after(run_id, 1, before_seq=3)
        latest = await uow.metrics.latest([run_id])
    assert whole.steps.tolist() == list(range(4000)) and whole.total == 4000
    assert whole.values.tolist() == [1.0] * 1500 + [2.0] * 500 + [3.0] * 2000
    assert [(b.seq, len(b), next(b.points()).step) for b in replayed] == [
        (1, 1500, 0),
        (2, 500, 1500),
        (3, 2000, 2000),
    ]
    assert [(b.seq, len(b)) for b in between] == [(2, 500)]
    assert latest[run_id] == [point("loss", 3999, 3.0)]


async def test_concurrent_writers_of_one_series_merge_one_after_the_other(
    uow_factory: SqlUnitOfWork.Factory,
) -> None:
    run_id = await new_run(uow_factory)

    async def write(seq: int) -> None:
        async with uow_factory() as uow:
            await uow.metrics.add_batch(batch(run_id, seq, range(seq * 100, seq * 100 + 1500), float(seq)))
            await uow.commit()

    await asyncio.gather(*(write(seq) for seq in range(8)))
    async with uow_factory() as uow:
        whole = await uow.metrics.read(run_id, "loss")
        assert await uow.metrics.count(run_id, "loss") == 2200
    expected = [float(min(step // 100, 7)) for step in range(2200)]
    assert whole.steps.tolist() == list(range(2200)) and whole.values.tolist() == expected


def wave(n: int) -> np.ndarray:
    return np.sin(np.arange(n) / 50.0)


async def store_values(uow_factory: SqlUnitOfWork.Factory, run_id: str, values: np.ndarray) -> None:
    pts = tuple(point("loss", s, v) for s, v in enumerate(values.tolist()))
    async with uow_factory() as uow:
        await uow.metrics.add_batch(MetricBatch.of_points(run_id, 1, pts))
        await uow.commit()


async def test_a_long_series_is_downsampled_from_block_summaries_keeping_extremes(
    database: Database,
) -> None:
    uow_factory = database.uow_factory()
    run_id = await new_run(uow_factory)
    n = 50 * BLOCK_STEPS
    values = wave(n)
    values[12_345], values[40_000] = 1e6, -1e6
    await store_values(uow_factory, run_id, values)
    async with uow_factory() as uow:
        before = database.statements
        read = await uow.metrics.read(run_id, "loss", 40)
        assert database.statements - before == 2  # the series row, then the summaries: no packed array
        later = await uow.metrics.read(run_id, "loss", 40, after_step=1500)
    steps = read.steps.tolist()
    assert read.total == n and 2 < len(steps) <= 40 and steps == sorted(set(steps))
    assert (steps[0], steps[-1]) == (0, n - 1) and {12_345, 40_000} <= set(steps)
    assert read.values[steps.index(12_345)] == 1e6 and read.values[steps.index(40_000)] == -1e6
    assert read.values.tolist() == values[read.steps].tolist()
    assert read.timestamps.tolist() == [at(s).timestamp() for s in steps]
    assert later.total == n - 1501 and later.steps[0] == 1501 and len(later.steps) <= 40
    assert {12_345, 40_000} <= set(later.steps.tolist())


async def test_a_series_of_few_blocks_is_downsampled_from_its_points(
    uow_factory: SqlUnitOfWork.Factory,
) -> None:
    run_id = await new_run(uow_factory)
    values = wave(3000)
    values[1234] = 99.0
    await store_values(uow_factory, run_id, values)
    async with uow_factory() as uow:
        fine = await uow.metrics.read(run_id, "loss", 100)  # 3 blocks, 49 buckets: from the points
        coarse = await uow.metrics.read(run_id, "loss", 10)  # over 64 x 10 points: one bucket per block
        few = [await uow.metrics.read(run_id, "loss", k) for k in (1, 2, 3)]
    assert fine.total == 3000 and 50 < len(fine.steps) <= 100 and 1234 in fine.steps.tolist()
    assert (fine.steps[0], fine.steps[-1]) == (0, 2999)
    assert len(coarse.steps) <= 8 and 1234 in coarse.steps.tolist() and coarse.steps[-1] == 2999
    assert [r.steps.tolist() for r in few[:2]] == [[2999], [0, 2999]]
    assert len(few[2].steps) == 3 and few[2].steps[-1] == 2999


async def test_gaps_and_long_spans_of_time_round_trip(uow_factory: SqlUnitOfWork.Factory) -> None:
    run_id = await new_run(uow_factory)
    steps = [0, 5, 7, 2000, 2047, 9000]
    pts = tuple(MetricPoint("loss", s, s / 3, at(s * 7.25)) for s in steps)  # 18 hours across the series
    async with uow_factory() as uow:
        await uow.metrics.add_batch(MetricBatch.of_points(run_id, 4, pts))
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.metrics.read(run_id, "loss", 6)).points == list(pts)
        whole = (await uow.metrics.read(run_id, "loss")).points
        assert await uow.metrics.count(run_id, "loss", after_step=2000) == 2
        assert (await uow.metrics.read(run_id, "loss", after_step=2000)).steps.tolist() == [2047, 9000]
    assert whole == list(pts)


async def test_latest_is_the_newest_point_of_the_highest_step(uow_factory: SqlUnitOfWork.Factory) -> None:
    run_id = await new_run(uow_factory)
    async with uow_factory() as uow:
        await uow.metrics.add_batch(batch(run_id, 2, [10], 2.0))
        await uow.metrics.add_batch(batch(run_id, 1, [10, 3000], 1.0))  # older: step 10 keeps seq 2
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.metrics.latest([run_id]))[run_id] == [point("loss", 3000, 1.0)]
        await uow.metrics.add_batch(batch(run_id, 3, [3000, 5], 3.0))
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.metrics.latest([run_id]))[run_id] == [point("loss", 3000, 3.0)]
        assert (await uow.metrics.read(run_id, "loss")).values.tolist() == [3.0, 2.0, 3.0]


async def test_a_series_logged_forward_in_small_batches_appends_segments(database: Database) -> None:
    uow_factory = database.uow_factory()
    run_id = await new_run(uow_factory)
    for seq in range(1, 41):  # 40 batches of 30 steps: blocks 0 and 1, past MAX_SEGMENTS segments in block 0
        async with uow_factory() as uow:
            await uow.metrics.add_batch(batch(run_id, seq, range((seq - 1) * 30, seq * 30)))
            await uow.commit()
    async with database.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT block, count(*) FROM metric_blocks GROUP BY block"))).all()
    assert all(n <= MAX_SEGMENTS for _, n in rows) and sum(n for _, n in rows) > 2
    async with uow_factory() as uow:
        whole = await uow.metrics.read(run_id, "loss")
        later = await uow.metrics.read(run_id, "loss", after_step=1005)
        small = await uow.metrics.read(run_id, "loss", 10)
        replayed = await uow.metrics.batches_after(run_id, 30)
        latest = await uow.metrics.latest([run_id])
    assert whole.steps.tolist() == list(range(1200)) and whole.values.tolist() == [
        float(s) for s in range(1200)
    ]
    assert later.total == 194 and later.steps.tolist() == list(range(1006, 1200))
    assert small.total == 1200 and len(small.steps) <= 10 and (small.steps[0], small.steps[-1]) == (0, 1199)
    assert [(b.seq, len(b)) for b in replayed] == [(seq, 30) for seq in range(31, 41)]
    assert latest[run_id] == [point("loss", 1199, 1199.0)]
