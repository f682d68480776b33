"""The production executor registry on a real Redis: what an executor or autoscaler announces is read back
whole (every field of its domain type), and goes away when it leaves or stops announcing."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from ptw.domain.executors import AutoscalerState, ExecutorState
from ptw.infra.live.redis_registry import RedisExecutorRegistry
from tests.fixtures.production import REDIS_URL, drop_keys

pytestmark = pytest.mark.redis
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def registry() -> AsyncIterator[RedisExecutorRegistry]:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"ptw-test-{secrets.token_hex(4)}"
    try:
        yield RedisExecutorRegistry(redis, prefix, ttl=0.5)
    finally:
        await drop_keys(redis, prefix)
        await redis.aclose()


async def test_executors_are_read_back_whole_and_leave(registry: RedisExecutorRegistry) -> None:
    busy = ExecutorState("w1-0", ("gpu", "cpu"), True, NOW, devices=("cuda:0 (H200)",), run_id="r1")
    idle = ExecutorState("w1-1", ("cpu",), False, NOW)
    await registry.announce(busy)
    await registry.announce(idle)
    assert await registry.alive() == [busy, idle]
    await registry.leave(busy.id)
    assert await registry.alive() == [idle]
    await asyncio.sleep(0.7)  # no heartbeat within the TTL: gone
    assert await registry.alive() == []


async def test_autoscalers_are_read_back_whole_until_they_expire(registry: RedisExecutorRegistry) -> None:
    state = AutoscalerState("a1", ("gpu",), 0, 4, 2, 1, 3, 5, NOW, gpus=2)
    await registry.publish_autoscaler(state, ttl=0.3)
    assert await registry.autoscalers() == [state]
    await asyncio.sleep(0.4)
    assert await registry.autoscalers() == []
