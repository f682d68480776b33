"""The one retry policy, periodic loop and token bucket that every loop and limit of the product uses."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from ptw.domain.retry import Backoff, every, retrying
from ptw.domain.token_bucket import TokenBucket


def test_pauses_grow_to_their_limit_and_stay() -> None:
    pauses = Backoff(first=0.5, limit=3.0).pauses()
    assert list(itertools.islice(pauses, 5)) == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_retrying_calls_until_it_returns_and_tells_each_failure() -> None:
    calls: list[int] = []
    told: list[tuple[str, float]] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OSError(f"down {len(calls)}")
        return "up"

    result = await retrying(
        flaky, Backoff(0.001, 0.002), retry_on=(OSError,), on_failure=lambda e, p: told.append((str(e), p))
    )
    assert result == "up" and len(calls) == 3
    assert told == [("down 1", 0.001), ("down 2", 0.002)]


async def test_retrying_raises_a_final_error_at_once_and_the_last_attempts_error() -> None:
    calls: list[int] = []

    async def refused() -> None:
        calls.append(1)
        raise ValueError("no")

    with pytest.raises(ValueError):
        await retrying(refused, Backoff(0.001, 0.001), final=(ValueError,))
    assert len(calls) == 1
    with pytest.raises(ValueError):
        await retrying(refused, Backoff(0.001, 0.001), attempts=3)
    assert len(calls) == 4
    with pytest.raises(ValueError):  # not retried: not of retry_on
        await retrying(refused, Backoff(0.001, 0.001), retry_on=(OSError,))
    assert len(calls) == 5


async def test_every_keeps_its_period_through_failures_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = iter([OSError("away"), OSError("still away"), None, OSError("away again")])
    done = asyncio.Event()
    calls = 0

    async def action() -> None:
        nonlocal calls
        calls += 1
        outcome = next(outcomes, None)
        if calls == 5:
            done.set()
        if outcome is not None:
            raise outcome

    task = asyncio.create_task(every(0.001, action, "check", logging.getLogger("t"), at_once=True))
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert calls >= 5 and len(warnings) == 2  # one per outage, not one per failed call


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # the next token comes in 1/rate seconds
    assert bucket.take(0.5) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.tokens == pytest.approx(2.0)  # refilled to burst, one taken
