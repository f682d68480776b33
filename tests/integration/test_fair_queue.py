"""Fair ordering between projects in both job queues: one project's long backlog does not keep another
project's runs waiting behind all of it; each project's own jobs keep their order. The arq queue is read
the way arq's workers read it (lowest score first, none in the future) on the real Redis."""

from __future__ import annotations

import secrets
import time

import pytest
from redis.asyncio import Redis

from ptw.domain.runs import RunJob
from ptw.infra.queue.arq_queue import ArqJobQueue
from ptw.infra.queue.memory_queue import InMemoryJobQueue

REDIS_URL = "redis://127.0.0.1:6379/0"


def job(project: str, n: int) -> RunJob:
    return RunJob(
        run_id=f"{project}-{n}",
        project_id=project,
        attempt=1,
        entrypoint="x:y",
        params={},
        resource_class="cpu",
        timeout_seconds=None,
    )


def backlog_then_others() -> list[RunJob]:
    """200 runs of a greedy project, then two other projects' runs."""
    return (
        [job("greedy", i) for i in range(200)]
        + [job("small", i) for i in range(2)]
        + [job("late", i) for i in range(1)]
    )


def assert_fair(order: list[str]) -> None:
    # The others' runs come within the first few, not after the 200.
    assert set(order[:6]) >= {"small-0", "small-1", "late-0"}, order[:10]
    greedy = [run for run in order if run.startswith("greedy")]
    assert greedy == [f"greedy-{i}" for i in range(200)]  # a project's own order is kept
    assert len(order) == 203


async def test_the_in_process_queue_takes_projects_in_turn() -> None:
    queue = InMemoryJobQueue()
    first = backlog_then_others()
    await queue.enqueue(first[0])
    took = [(await queue.take()).run_id]  # the greedy project's first run is running
    for queued in first[1:]:
        await queue.enqueue(queued)
    assert (await queue.depth()) == {"cpu": 202}
    took += [(await queue.take()).run_id for _ in range(202)]
    assert_fair(took)


@pytest.mark.redis
async def test_the_arq_queue_scores_projects_in_turn_and_defers_nothing() -> None:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"ptw-test-{secrets.token_hex(4)}"
    try:
        queue = ArqJobQueue(redis, prefix)
        for queued in backlog_then_others():
            await queue.enqueue(queued)
        name = queue.queue_name("cpu")
        now_ms = time.time() * 1000
        # What an arq worker polls: jobs of score <= now, lowest first.
        ready = await redis.zrangebyscore(name, "-inf", now_ms, withscores=True)
        assert len(ready) == 203 and all(score >= 1 for _, score in ready)
        order = [job_id.decode().split(":")[-2] for job_id, _ in ready]
        assert_fair(order)
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        keys += [k async for k in redis.scan_iter(match=f"arq:job:{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
