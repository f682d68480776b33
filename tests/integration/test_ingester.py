"""The metric ingester and the production follower, on a real Redis and a real PostgreSQL.

Each test has its own PostgreSQL database and Redis key prefix; either being unreachable fails it."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import text

from ptw.domain.events import RunChanged, run_topic
from ptw.domain.metrics import MetricBatch, MetricPoint, Series, series_of_points
from ptw.domain.runs import Run, RunStatus
from ptw.domain.services import MetricService
from ptw.domain.services.metric_follow import Delivery, MetricFollow
from ptw.domain.tenancy import Actor, Project, Role
from ptw.domain.workflows import Workflow
from ptw.infra.db import Database
from ptw.infra.ingest.metric_ingester import GROUP, MetricIngester
from ptw.infra.live.memory_bus import InMemoryEventBus
from ptw.infra.live.metric_columns import encode_series
from ptw.infra.live.redis_bus import RedisEventBus
from ptw.infra.live.redis_metric_log import RedisMetricLog
from tests.fixtures.databases import fresh_postgres_url, migrated_database

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

REDIS_URL = os.environ.get("PTW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AT = datetime(2026, 3, 1, tzinfo=UTC)


async def connect() -> Redis:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as e:
        await client.aclose()
        pytest.fail(f"Redis at {REDIS_URL} is unreachable: {e!r}")
    return client


@dataclass
class World:
    database: Database
    redis: Redis
    prefix: str
    log: RedisMetricLog
    metrics: MetricService
    run: Run

    def ingester(self, metrics: MetricService | None = None, **options: Any) -> MetricIngester:
        return MetricIngester(self.redis, self.prefix, metrics or self.metrics, **options)

    async def stored(self) -> int:
        async with self.database.engine.connect() as conn:
            sql = text("SELECT coalesce(sum(count), 0) FROM metric_series WHERE run_id = :run")
            return int((await conn.execute(sql, {"run": self.run.id})).scalar_one())

    async def pending(self) -> int:
        try:
            return int((await self.redis.xpending(self.log.stream(self.run.id), GROUP))["pending"])
        except ResponseError:  # no group yet
            return 0

    async def finish(self, bus: RedisEventBus | None = None) -> None:
        async with self.database.uow_factory()() as uow:
            run = await uow.runs.get(self.run.id)
            assert run is not None
            run.transition(RunStatus.SUCCEEDED, datetime.now(UTC))
            await uow.runs.update(run)
            await uow.commit()
        if bus is not None:
            await bus.publish([run_topic(run.id)], RunChanged(run))


@pytest.fixture
async def world() -> AsyncIterator[World]:
    prefix = f"ptw-test-{secrets.token_hex(6)}"
    redis = await connect()
    async with fresh_postgres_url() as url, migrated_database(url) as database:
        project = Project(str(uuid.uuid4()), "live", AT)
        workflow = Workflow(str(uuid.uuid4()), "train", "pkg.mod:main", project.id, {"type": "object"}, {})
        run = Run(str(uuid.uuid4()), project.id, workflow.id, {}, AT, status=RunStatus.RUNNING)
        async with database.uow_factory()() as uow:
            await uow.projects.add(project)
            await uow.workflows.add(workflow)
            await uow.runs.add(run)
            await uow.commit()
        log = RedisMetricLog(redis, prefix)
        metrics = MetricService(database.uow_factory(), InMemoryEventBus(), log)
        try:
            yield World(database, redis, prefix, log, metrics, run)
        finally:
            keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


def batch_points(first_step: int, n: int, keys: int = 5, value: float = 1.0) -> tuple[Series, ...]:
    steps = range(first_step, first_step + n)
    return series_of_points(MetricPoint(f"k{s % keys}", s, value + s / 1000, AT) for s in steps)


async def until(condition: Any, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_200k_points_are_stored_once_acknowledged_trimmed_and_retired(world: World) -> None:
    seqs = [await world.metrics.record(world.run.id, batch_points(5000 * i, 5000)) for i in range(40)]
    ingester = world.ingester(trim_lag_ms=0, sweep_seconds=0)
    stored = 0
    for _ in range(50):
        stored += await ingester.ingest_round()
        if stored >= 200_000:
            break
    assert stored == 200_000 and await world.stored() == 200_000
    async with world.database.uow_factory()() as uow:
        replayed = await uow.metrics.batches_after(world.run.id, 0)
    assert [(b.seq, len(b)) for b in replayed] == [(b.seq, 5000) for b in seqs if b is not None]
    assert await world.pending() == 0
    assert await world.redis.xlen(world.log.stream(world.run.id)) == 0  # everything stored was trimmed
    async with world.database.uow_factory()() as uow:
        run = await uow.runs.get(world.run.id)
    assert run is not None and run.metric_keys == ["k0", "k1", "k2", "k3", "k4"]
    assert await world.log.active_runs() == [world.run.id]  # the run goes on: its stream stays
    await world.finish()
    await ingester.ingest_round()
    assert await world.log.active_runs() == []
    assert await world.redis.exists(world.log.stream(world.run.id)) == 0


async def test_a_repeated_point_keeps_the_value_of_the_newest_batch(world: World) -> None:
    older = await world.log.append(world.run.id, batch_points(0, 3000, keys=1, value=1.0))
    newer = await world.log.append(world.run.id, batch_points(1500, 3000, keys=1, value=2.0))
    assert await world.ingester().ingest_round() == 6000  # one round, one write of both
    series = await world.metrics.series_of(world.run.id, "k0", max_points=10_000)
    assert series.total == 4500
    assert {p.step: p.value for p in series.points}[1600] == 2.0 + 1.6
    # A batch reaching storage late (another ingester's, a retry) does not overwrite a newer point.
    late = MetricBatch(world.run.id, older + 1, batch_points(0, 3000, keys=1, value=3.0))
    assert newer > late.seq
    await world.metrics.ingest([late])
    values = {p.step: p.value for p in (await world.metrics.series_of(world.run.id, "k0", 10_000)).points}
    assert values[100] == 3.0 + 0.1 and values[1600] == 2.0 + 1.6


async def test_two_ingesters_at_once_store_each_batch_once(world: World) -> None:
    for i in range(60):
        await world.log.append(world.run.id, batch_points(1000 * i, 1000))
    ingesters = [world.ingester(count=2, block_ms=10) for _ in range(2)]
    for ingester in ingesters:
        await ingester.start()
    try:

        async def all_stored() -> bool:
            return await world.stored() == 60_000 and await world.pending() == 0

        await until(all_stored)
    finally:
        for ingester in ingesters:
            await ingester.stop()
    assert sum(i.stored_points for i in ingesters) == 60_000  # nothing was stored twice


async def test_entries_stay_pending_while_postgresql_is_down_and_are_stored_after(world: World) -> None:
    for i in range(5):
        await world.log.append(world.run.id, batch_points(100 * i, 100))
    down = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")  # nothing listens there
    ingester = world.ingester(MetricService(down.uow_factory(), InMemoryEventBus(), world.log), block_ms=10)
    await ingester.start()
    try:

        async def all_read() -> bool:
            return await world.pending() == 5

        await until(all_read)
        await asyncio.sleep(0.5)  # a few failed rounds
        assert await world.pending() == 5 and await world.stored() == 0
        assert await world.redis.xlen(world.log.stream(world.run.id)) == 5
        ingester.metrics = world.metrics  # PostgreSQL is back

        async def all_stored() -> bool:
            return await world.stored() == 500 and await world.pending() == 0

        await until(all_stored)
    finally:
        await ingester.stop()
        await down.dispose()


DEADLOCK = "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$"


class LosesToAnotherTransaction(MetricService):
    """Storage whose first ``times`` transactions PostgreSQL rolls back as a deadlock victim (a real error
    of the server, SQLSTATE 40P01, as two ingesters storing one run can meet), then stores as usual."""

    def __init__(self, world: World, times: int) -> None:
        super().__init__(world.database.uow_factory(), InMemoryEventBus(), world.log)
        self.database, self.times = world.database, times

    async def ingest(self, batches: Any) -> set[str]:
        if self.times > 0:
            self.times -= 1
            async with self.database.engine.connect() as conn:
                await conn.execute(text(DEADLOCK))
        return await super().ingest(batches)


@pytest.mark.parametrize("batches", [1, 3])
async def test_a_batch_whose_transaction_lost_a_deadlock_is_stored_by_a_later_round_not_set_aside(
    world: World, batches: int
) -> None:
    for i in range(batches):
        await world.log.append(world.run.id, batch_points(100 * i, 100))
    ingester = world.ingester(LosesToAnotherTransaction(world, times=2), block_ms=10)
    await ingester.start()
    try:

        async def all_stored() -> bool:
            return await world.stored() == 100 * batches and await world.pending() == 0

        await until(all_stored)
    finally:
        await ingester.stop()
    assert await ingester.set_aside.count() == 0


async def test_a_stream_retired_while_an_ingester_waits_on_it_costs_no_failed_round(world: World) -> None:
    """Another ingester retires a finished run's stream while this one blocks reading it (Redis answers
    UNBLOCKED): the round reads nothing and the next one goes on, without a failed round's pause."""
    await world.log.append(world.run.id, batch_points(0, 100))
    ingester = world.ingester(block_ms=2000)
    assert await ingester.ingest_round() == 100
    reading = asyncio.create_task(ingester.ingest_round())  # blocks on the stream, nothing new there
    await asyncio.sleep(0.2)
    await world.redis.delete(world.log.stream(world.run.id))
    assert await asyncio.wait_for(reading, 5) == 0


async def test_a_follower_started_mid_run_gets_every_point_once_across_a_reconnect(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_storage: list[int | None] = []
    replay = MetricFollow._replay

    def counted(follow: MetricFollow, before_seq: int | None = None) -> AsyncIterator[Delivery]:
        from_storage.append(before_seq)
        return replay(follow, before_seq)

    monkeypatch.setattr(MetricFollow, "_replay", counted)
    other = Redis.from_url(REDIS_URL)
    bus_a, bus_b = RedisEventBus(world.redis, world.prefix), RedisEventBus(other, world.prefix)
    producer_side = MetricService(world.database.uow_factory(), bus_a, world.log)
    follower_side = MetricService(world.database.uow_factory(), bus_b, world.log)  # another replica
    actor = Actor("key", {world.run.project_id: Role.VIEWER})
    ingester = world.ingester(producer_side, count=3, block_ms=10, trim_lag_ms=0, sweep_seconds=0.2)
    batches, size = 300, 10
    appended = 0

    async def produce() -> None:
        nonlocal appended
        for i in range(batches):
            await producer_side.record(world.run.id, batch_points(size * i, size, keys=2))
            appended += 1
            await asyncio.sleep(0.002)
        await world.finish(bus_a)

    received: list[tuple[int, list[MetricPoint]]] = []

    async def follow(after: int, stop_after: int | None) -> int:
        async with aclosing(follower_side.follow(actor, world.run.id, after)) as deliveries:
            async for batch in deliveries:
                received.append((batch.seq, list(batch.points())))
                if stop_after is not None and len(received) >= stop_after:
                    break
        return received[-1][0]

    await ingester.start()
    producer = asyncio.create_task(produce())
    try:
        async with asyncio.timeout(60):

            async def some_trimmed() -> bool:
                trimmed = await world.redis.exists(world.log.trim_mark(world.run.id))
                return appended > 60 and bool(trimmed)

            await until(some_trimmed)
            cursor = await follow(0, stop_after=100)
            await follow(cursor, stop_after=None)  # a reconnect with its cursor; ends with the run
            await producer
    finally:
        await ingester.stop()
        producer.cancel()
        await bus_a.close()
        await bus_b.close()
        await other.aclose()
    seqs = [seq for seq, _ in received]
    assert seqs == sorted(set(seqs))  # in order, no batch twice
    steps = Counter(p.step for _, pts in received for p in pts)
    assert set(steps) == set(range(batches * size)) and set(steps.values()) == {1}
    assert any(before is not None for before in from_storage)  # trimmed batches came from PostgreSQL


async def test_entries_that_cannot_be_stored_are_set_aside_while_another_projects_run_keeps_storing(
    world: World,
) -> None:
    other = Project(str(uuid.uuid4()), "other tenant", AT)
    workflow = Workflow(str(uuid.uuid4()), "train", "pkg.mod:main", other.id, {"type": "object"}, {})
    neighbour = Run(str(uuid.uuid4()), other.id, workflow.id, {}, AT, status=RunStatus.RUNNING)
    async with world.database.uow_factory()() as uow:
        await uow.projects.add(other)
        await uow.workflows.add(workflow)
        await uow.runs.add(neighbour)
        await uow.commit()
    stream = world.log.stream(world.run.id)
    # Straight into Redis, past every check of the API and the SDK: a NUL in a key, columns that do not
    # add up, and a time no database can hold.
    await world.redis.xadd(stream, encode_series([Series.of("lo\x00ss", [0], [1.0], [AT.timestamp()])]))
    await world.redis.xadd(
        stream, {b"k": b'["loss"]', b"n": b"\x05\x00\x00\x00", b"s": b"", b"v": b"", b"t": b""}
    )
    await world.log.append(world.run.id, batch_points(0, 100))
    await world.redis.xadd(stream, encode_series([Series.of("late", [0], [1.0], [1e300])]))
    await world.log.append(world.run.id, batch_points(100, 100))
    for i in range(10):
        await world.log.append(neighbour.id, batch_points(100 * i, 100))

    async def neighbour_stored() -> int:
        return (await world.metrics.series_of(neighbour.id, "k0", max_points=1)).total * 5  # 5 keys alike

    ingester = world.ingester(block_ms=10)

    async def all_stored_or_set_aside() -> bool:
        counts = await world.stored(), await neighbour_stored(), await ingester.set_aside.count()
        return counts == (200, 1000, 3)

    await ingester.start()
    try:
        await until(all_stored_or_set_aside)
    finally:
        await ingester.stop()
    assert await world.pending() == 0  # nothing left to block the stream
    reasons = sorted(e.reason for e in await ingester.set_aside.recent())
    assert len(reasons) == 3
    assert any("NUL" in r for r in reasons)
    assert any("not a metric batch" in r for r in reasons)
    assert any("timestamp is not a time" in r for r in reasons), reasons
    assert {e.run_id for e in await ingester.set_aside.recent()} == {world.run.id}
