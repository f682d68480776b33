"""The executor registry of production mode: each slot of each `ptw worker` announces itself in Redis.

One hash per executor with a TTL renewed by every heartbeat, plus an index sorted by expiry time so
``alive()`` lists the pool without a SCAN; an executor that stops beating drops out once its TTL ends.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime

from redis.asyncio import Redis

from ptw.domain.executors import AutoscalerState, ExecutorState
from ptw.infra import redis_keys


class RedisExecutorRegistry:
    def __init__(self, redis: Redis, prefix: str, ttl: float = 15.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl

    async def announce(self, state: ExecutorState) -> None:
        key = redis_keys.executor(self.prefix, state.id)
        fields = {
            "resource_classes": ",".join(state.resource_classes),
            "busy": "1" if state.busy else "0",
            "seen_at": state.seen_at.isoformat(),
            "devices": "\x1f".join(state.devices),
            "run_id": state.run_id or "",
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, int(self.ttl * 1000))
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
        names = sorted(i.decode() if isinstance(i, bytes) else str(i) for i in ids)
        async with self.redis.pipeline(transaction=False) as pipe:
            for executor_id in names:
                pipe.hgetall(redis_keys.executor(self.prefix, executor_id))
            hashes = await pipe.execute()
        return [_state(i, h) for i, h in zip(names, hashes, strict=True) if h]

    async def publish_autoscaler(self, state: AutoscalerState, ttl: float) -> None:
        # One small hash for every autoscaler: few of them, read in one HGETALL by each pool query.
        fields = dataclasses.asdict(state) | {
            "seen_at": state.seen_at.isoformat(),
            "expires": time.time() + ttl,
        }
        await self.redis.hset(redis_keys.autoscalers(self.prefix), state.id, json.dumps(fields))  # type: ignore[misc]

    async def retire_autoscaler(self, autoscaler_id: str) -> None:
        await self.redis.hdel(redis_keys.autoscalers(self.prefix), autoscaler_id)  # type: ignore[misc]

    async def autoscalers(self) -> list[AutoscalerState]:
        key = redis_keys.autoscalers(self.prefix)
        raw = await self.redis.hgetall(key)  # type: ignore[misc]
        now, states, expired = time.time(), [], []
        for ident, value in sorted((_text(k), _text(v)) for k, v in raw.items()):
            fields = json.loads(value)
            if fields.pop("expires") < now:
                expired.append(ident)  # its process died without retiring: drop it for everyone
                continue
            fields["seen_at"] = datetime.fromisoformat(fields["seen_at"])
            fields["resource_classes"] = tuple(fields["resource_classes"])
            states.append(AutoscalerState(**fields))
        if expired:
            await self.redis.hdel(key, *expired)  # type: ignore[misc]
        return states


def _state(executor_id: str, raw: dict[bytes | str, bytes | str]) -> ExecutorState:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    return ExecutorState(
        id=executor_id,
        resource_classes=tuple(c for c in fields.get("resource_classes", "").split(",") if c),
        busy=fields.get("busy") == "1",
        seen_at=datetime.fromisoformat(fields["seen_at"]) if "seen_at" in fields else datetime.now(UTC),
        devices=tuple(d for d in fields.get("devices", "").split("\x1f") if d),
        run_id=fields.get("run_id") or None,
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
