"""The executor registry of production mode: each slot of each `ptw worker` announces itself in Redis.

One key per executor (its ``ExecutorState`` as JSON) with a TTL renewed by every heartbeat, plus an index
sorted by expiry time so ``alive()`` lists the pool without a SCAN; an executor that stops beating drops
out once its TTL ends. The JSON is derived from the domain's dataclasses: a new field needs nothing here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydantic import TypeAdapter
from redis.asyncio import Redis

from ptw.domain.executors import AutoscalerState, ExecutorState
from ptw.infra import redis_keys


@dataclass(frozen=True)
class _Announced:
    state: AutoscalerState
    expires: float  # time.time() after which the autoscaler is taken for dead


_EXECUTOR = TypeAdapter(ExecutorState)
_ANNOUNCED = TypeAdapter(_Announced)


class RedisExecutorRegistry:
    def __init__(self, redis: Redis, prefix: str, ttl: float = 15.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl

    async def announce(self, state: ExecutorState) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(
                redis_keys.executor(self.prefix, state.id),
                _EXECUTOR.dump_json(state),
                px=int(self.ttl * 1000),
            )
            pipe.zadd(redis_keys.executors_index(self.prefix), {state.id: time.time() + self.ttl})
            await pipe.execute()

    async def leave(self, executor_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(redis_keys.executor(self.prefix, executor_id))
            pipe.zrem(redis_keys.executors_index(self.prefix), executor_id)
            await pipe.execute()

    async def alive(self) -> list[ExecutorState]:
        index = redis_keys.executors_index(self.prefix)
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(index, "-inf", now)
            pipe.zrangebyscore(index, now, "+inf")
            _, ids = await pipe.execute()
        if not ids:
            return []
        names = sorted(_text(i) for i in ids)
        async with self.redis.pipeline(transaction=False) as pipe:  # not MGET: keys of many cluster slots
            for executor_id in names:
                pipe.get(redis_keys.executor(self.prefix, executor_id))
            found = await pipe.execute()
        return [_EXECUTOR.validate_json(state) for state in found if state is not None]

    async def publish_autoscaler(self, state: AutoscalerState, ttl: float) -> None:
        # One small hash for every autoscaler: few of them, read in one HGETALL by each pool query.
        value = _ANNOUNCED.dump_json(_Announced(state, expires=time.time() + ttl))
        await self.redis.hset(redis_keys.autoscalers(self.prefix), state.id, value)  # type: ignore[misc]

    async def retire_autoscaler(self, autoscaler_id: str) -> None:
        await self.redis.hdel(redis_keys.autoscalers(self.prefix), autoscaler_id)  # type: ignore[misc]

    async def autoscalers(self) -> list[AutoscalerState]:
        key = redis_keys.autoscalers(self.prefix)
        raw = await self.redis.hgetall(key)  # type: ignore[misc]
        now, states, expired = time.time(), [], []
        for ident, value in sorted((_text(k), _text(v)) for k, v in raw.items()):
            announced = _ANNOUNCED.validate_json(value)
            if announced.expires < now:
                expired.append(ident)  # its process died without retiring: drop it for everyone
                continue
            states.append(announced.state)
        if expired:
            await self.redis.hdel(key, *expired)  # type: ignore[misc]
        return states


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
