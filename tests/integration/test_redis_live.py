"""Production's live path on a real Redis: the event bus across two replicas, and the metric log.

Each test has its own key prefix (removed afterwards); Redis being unreachable fails the tests."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from ptw.domain.events import Event, MetricsRecorded, RunChanged, RunLogged, project_topic, run_topic
from ptw.domain.metrics import MetricBatch, MetricPoint, Series, series_of_points
from ptw.domain.ports import Subscription
from ptw.domain.runs import Run, RunStatus
from ptw.infra import redis_keys
from ptw.infra.live.event_codec import decode_event, encode_event
from ptw.infra.live.redis_bus import RedisEventBus
from ptw.infra.live.redis_metric_log import RedisMetricLog, entry_id, seq_of

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("PTW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


async def connect(**options: object) -> Redis:
    client = Redis.from_url(REDIS_URL, **options)  # type: ignore[arg-type]
    try:
        await client.ping()
    except Exception as e:
        await client.aclose()
        pytest.fail(f"Redis at {REDIS_URL} is unreachable: {e!r}")
    return client


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = f"ptw-test-{secrets.token_hex(6)}"
    yield prefix
    client = await connect()
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def replicas(prefix: str) -> AsyncIterator[tuple[RedisEventBus, RedisEventBus]]:
    """Two buses, each with its own client: what two API processes would have."""
    a, b = await connect(), await connect(client_name=f"{prefix}-b")
    bus_a, bus_b = RedisEventBus(a, prefix), RedisEventBus(b, prefix)
    yield bus_a, bus_b
    for bus, client in ((bus_a, a), (bus_b, b)):
        await bus.close()
        await client.aclose()


@pytest.fixture
async def metric_log(prefix: str) -> AsyncIterator[RedisMetricLog]:
    client = await connect()
    yield RedisMetricLog(client, prefix)
    await client.aclose()


def a_run(**fields: object) -> Run:
    return Run(
        id="run-1",
        project_id="p-1",
        workflow_id="w-1",
        params={"lr": 0.1, "layers": [64, 32], "name": "é"},
        created_at=AT,
        **fields,  # type: ignore[arg-type]
    )


EVENTS: list[Event] = [
    RunChanged(
        a_run(
            status=RunStatus.SUCCEEDED,
            started_at=AT,
            finished_at=AT,
            updated_at=AT,
            summary={"accuracy": 0.97},
            device="cuda:0",
            metric_seq=7,
            metric_keys=["acc", "loss"],
        )
    ),
    RunChanged(a_run()),
    MetricsRecorded(
        "p-1",
        MetricBatch.of_points("run-1", 3, (MetricPoint("loss", 1, 0.5, AT), MetricPoint("a", 2, -1e300, AT))),
    ),
    RunLogged("run-1", "p-1", "epoch 1 done\n", "stdout", AT),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_the_codec_gives_back_each_event_as_it_was(event: Event) -> None:
    assert decode_event(encode_event(event)) == event


async def next_event(sub: Subscription, within: float = 2.0) -> Event:
    return await asyncio.wait_for(anext(aiter(sub)), within)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
async def test_an_event_published_on_one_replica_reaches_the_other(
    replicas: tuple[RedisEventBus, RedisEventBus], event: Event
) -> None:
    bus_a, bus_b = replicas
    async with bus_b.subscribe([run_topic("run-1")]) as there, bus_a.subscribe([run_topic("run-1")]) as here:
        await bus_a.publish([run_topic("run-1")], event)
        assert await next_event(there) == event
        assert await next_event(here) == event


async def test_a_subscriber_of_several_topics_gets_an_event_once(
    replicas: tuple[RedisEventBus, RedisEventBus],
) -> None:
    bus_a, bus_b = replicas
    topics = [run_topic("run-1"), project_topic("p-1")]
    async with bus_b.subscribe(topics) as both, bus_b.subscribe([project_topic("p-1")]) as project:
        await bus_a.publish(topics, EVENTS[1])
        await bus_a.publish([run_topic("run-1")], EVENTS[3])
        assert await next_event(both) == EVENTS[1]
        assert await next_event(both) == EVENTS[3]  # not EVENTS[1] a second time
        assert await next_event(project) == EVENTS[1]
        with pytest.raises(TimeoutError):
            await next_event(project, 0.2)


async def test_subscribers_of_a_process_share_one_redis_subscription(
    replicas: tuple[RedisEventBus, RedisEventBus], prefix: str
) -> None:
    bus_a, bus_b = replicas
    channel = redis_keys.event_channel(prefix, run_topic("run-1"))

    async def subscribers() -> int:
        return dict(await bus_a.redis.pubsub_numsub(channel))[channel.encode()]  # type: ignore[no-any-return]

    async with (
        bus_b.subscribe([run_topic("run-1")]) as first,
        bus_b.subscribe([run_topic("run-1")]) as second,
    ):
        assert await subscribers() == 1
        await bus_a.publish([run_topic("run-1")], EVENTS[3])
        assert await next_event(first) == await next_event(second) == EVENTS[3]
    for _ in range(50):  # UNSUBSCRIBE is not waited for
        if await subscribers() == 0:
            break
        await asyncio.sleep(0.02)
    assert await subscribers() == 0


async def test_the_bus_reconnects_and_resubscribes_when_its_connection_drops(
    replicas: tuple[RedisEventBus, RedisEventBus], prefix: str
) -> None:
    bus_a, bus_b = replicas
    async with bus_b.subscribe([run_topic("run-1")]) as sub:
        clients = await bus_a.redis.client_list()
        [victim] = [c for c in clients if c["name"] == f"{prefix}-b" and int(c["sub"]) > 0]
        await bus_a.redis.client_kill_filter(_id=victim["id"])
        # Pub/sub is at most once: what is published while the bus reconnects is lost, so publish until
        # one arrives, on the very same subscription.
        deadline = time.monotonic() + 10
        received = None
        while received is None and time.monotonic() < deadline:
            await bus_a.publish([run_topic("run-1")], EVENTS[3])
            try:
                received = await next_event(sub, 0.2)
            except TimeoutError:
                pass
        assert received == EVENTS[3]
        clients = await bus_a.redis.client_list()
        assert [c["id"] for c in clients if c["name"] == f"{prefix}-b" and int(c["sub"]) > 0] != [
            victim["id"]
        ]


def points(n: int, step0: int = 0) -> tuple[Series, ...]:
    return series_of_points(MetricPoint(f"k{i % 3}", step0 + i, i / 7, AT) for i in range(n))


def test_a_seq_is_its_stream_entry_id() -> None:
    assert seq_of("1767225600123-5") == 1767225600123 << 20 | 5
    assert entry_id(seq_of("1767225600123-5")) == "1767225600123-5"
    assert seq_of(entry_id(0)) == 0
    assert seq_of("5-1") > seq_of("4-1048575") > seq_of("4-0")


async def test_the_log_gives_back_batches_after_a_cursor_in_order(metric_log: RedisMetricLog) -> None:
    seqs = [await metric_log.append("run-1", points(5, 5 * i)) for i in range(6)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    read = await metric_log.read_after("run-1", 0)
    assert [b.seq for b in read.batches] == seqs and read.trimmed_below == 0
    assert read.batches[2] == MetricBatch("run-1", seqs[2], points(5, 10))
    later = await metric_log.read_after("run-1", seqs[3], count=1)
    assert [b.seq for b in later.batches] == [seqs[4]]
    assert (await metric_log.read_after("run-1", seqs[-1])).batches == []
    assert (await metric_log.read_after("other-run", 0)).batches == []
    assert await metric_log.active_runs() == ["run-1"]


async def test_a_blocked_read_wakes_as_soon_as_a_batch_comes(metric_log: RedisMetricLog) -> None:
    start = await metric_log.append("run-1", points(1))
    reader = asyncio.create_task(metric_log.read_after("run-1", start, block_ms=5000))
    await asyncio.sleep(0.1)
    assert not reader.done()
    appended = time.perf_counter()
    seq = await metric_log.append("run-1", points(2, 1))
    read = await reader
    assert time.perf_counter() - appended < 0.5
    assert [b.seq for b in read.batches] == [seq]
    empty = time.perf_counter()
    assert (await metric_log.read_after("run-1", seq, block_ms=100)).batches == []
    assert time.perf_counter() - empty >= 0.09


async def test_trimming_drops_older_batches_and_leaves_a_mark_that_only_grows(
    metric_log: RedisMetricLog,
) -> None:
    seqs = [await metric_log.append("run-1", points(2, 2 * i)) for i in range(5)]
    await metric_log.trim("run-1", seqs[3])
    read = await metric_log.read_after("run-1", 0)
    assert [b.seq for b in read.batches] == seqs[3:] and read.trimmed_below == seqs[3]
    await metric_log.trim("run-1", seqs[1])  # a late, lower trim moves nothing back
    assert (await metric_log.read_after("run-1", 0)).trimmed_below == seqs[3]
    assert not await metric_log.retire("run-1")  # not empty yet
    await metric_log.trim("run-1", seqs[-1] + 1)
    assert await metric_log.retire("run-1")
    assert await metric_log.active_runs() == []
    assert await metric_log.redis.exists(metric_log.stream("run-1"), metric_log.trim_mark("run-1")) == 0


async def test_a_shared_reader_gives_every_follower_each_batch_once_from_one_tail(
    metric_log: RedisMetricLog,
) -> None:
    from ptw.infra.live.shared_log_reader import SharedLogReader

    calls = 0
    read_after = metric_log.read_after

    async def counted(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return await read_after(*args, **kwargs)  # type: ignore[arg-type]

    metric_log.read_after = counted  # type: ignore[method-assign]
    shared = SharedLogReader(metric_log)
    point = series_of_points([MetricPoint("loss", 0, 1.0, AT)])
    seqs = [await metric_log.append("run-s", point) for _ in range(3)]

    async def follow(after: int, until: int) -> list[int]:
        got: list[int] = []
        while not got or got[-1] < until:
            read = await shared.read_after("run-s", got[-1] if got else after, block_ms=2000, count=100)
            assert read.trimmed_below == 0
            got += [b.seq for b in read.batches]
        return got

    followers = [asyncio.create_task(follow(0, seqs[-1] + 10**9)) for _ in range(20)]
    await asyncio.sleep(0.2)
    seqs += [await metric_log.append("run-s", point) for _ in range(5)]
    for f in followers:
        f.cancel()
    done = [asyncio.create_task(follow(0, seqs[-1])) for _ in range(20)]
    results = await asyncio.wait_for(asyncio.gather(*done), 10)
    assert all(r == seqs for r in results)  # each batch once, in order, for every follower
    assert calls < 20  # one tail read the log for all of them, not one reader each
    late = await shared.read_after("run-s", 0, block_ms=None)  # not waiting: the log itself answers
    assert [b.seq for b in late.batches] == seqs
    await shared.close()


async def test_a_shared_reader_answers_from_any_cursor_in_its_tail(metric_log: RedisMetricLog) -> None:
    from ptw.infra.live.shared_log_reader import SharedLogReader

    shared = SharedLogReader(metric_log)
    point = series_of_points([MetricPoint("loss", 0, 1.0, AT)])
    first = await metric_log.append("run-c", point)
    assert [b.seq for b in (await shared.read_after("run-c", 0, block_ms=2000, count=10)).batches] == [first]
    seqs = [first] + [await metric_log.append("run-c", point) for _ in range(9)]
    got: list[int] = [first]
    while got[-1] < seqs[-1]:  # the tail catches up
        got += [b.seq for b in (await shared.read_after("run-c", got[-1], block_ms=2000, count=100)).batches]
    assert got == seqs
    for cursor in range(len(seqs)):
        read = await shared.read_after("run-c", seqs[cursor], block_ms=2000 if cursor < 9 else 50, count=3)
        assert [b.seq for b in read.batches] == seqs[cursor + 1 : cursor + 4]
    below = await shared.read_after("run-c", seqs[0] - 1, block_ms=2000, count=100)  # not a batch's seq
    assert [b.seq for b in below.batches] == seqs
    await shared.close()
