"""Per-API-key request rate limits: a token bucket per key, in Redis (shared by every replica) or in-process.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second; each GraphQL operation
takes one. A key that finds its bucket empty is told how long to wait for the next token (the
``retryAfter`` of RATE_LIMITED). The Redis bucket is one Lua script, so the read-refill-take of
concurrent replicas cannot interleave; it reads Redis's own clock, so replicas' clocks need not agree.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from ptw.domain.token_bucket import TokenBucket
from ptw.infra import redis_keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ptw.infra.settings import Settings

log = logging.getLogger(__name__)

# Buckets kept by one process in embedded mode; the least recently used is forgotten beyond this
# (a forgotten bucket comes back full, which only ever errs on the generous side).
LOCAL_BUCKETS = 10_000

# TokenBucket.take, run inside Redis. Floats leave a Lua script truncated to integers, so the wait is
# returned as a string.
_TOKEN_BUCKET = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RateLimiter(Protocol):
    async def take(self, key_id: str) -> float:
        """Take a token of the key's bucket: 0 when there was one, else the seconds until there is."""
        ...


class LocalRateLimiter:
    """Embedded mode's limiter: the same token buckets, in this process's memory."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    async def take(self, key_id: str) -> float:
        now = time.monotonic()
        bucket = self._buckets.pop(key_id, None) or TokenBucket.full(self.rate, self.burst, now)
        wait = bucket.take(now)
        self._buckets[key_id] = bucket
        while len(self._buckets) > LOCAL_BUCKETS:
            self._buckets.popitem(last=False)
        return wait


class RedisRateLimiter:
    """Production's limiter: one bucket per key in Redis, shared by every API replica.

    Fails open: while Redis does not answer, requests are let through (and the failure logged), since
    the limit protects the service and refusing everything would be the outage it guards against."""

    def __init__(self, redis: Redis, prefix: str, rate: float, burst: int) -> None:
        self.redis, self.prefix, self.rate, self.burst = redis, prefix, rate, burst
        self._script = redis.register_script(_TOKEN_BUCKET)

    async def take(self, key_id: str) -> float:
        try:
            wait = await self._script(
                keys=[redis_keys.rate_limit(self.prefix, key_id)], args=[self.rate, self.burst]
            )
        except Exception as error:  # any Redis failure: let the request through
            log.warning("rate limit not checked, Redis failed: %r", error)
            return 0.0
        return float(wait)


def rate_limiter_for(settings: Settings, redis: Redis | None) -> RateLimiter | None:
    """The limiter the settings ask for; None when rate limiting is off (``PTW_RATE_LIMIT=0``)."""
    if settings.rate_limit <= 0:
        return None
    burst = max(1, settings.rate_limit_burst or math.ceil(settings.rate_limit * 10))
    if redis is None:
        return LocalRateLimiter(settings.rate_limit, burst)
    return RedisRateLimiter(redis, settings.redis_prefix, settings.rate_limit, burst)


def auth_failure_limiter_for(settings: Settings, redis: Redis | None) -> RateLimiter | None:
    """Buckets of failed authentications per client address (``auth:<address>``), shared by the replicas
    in production; None when ``PTW_AUTH_FAILURE_RATE=0``."""
    if settings.auth_failure_rate <= 0:
        return None
    burst = settings.auth_failure_burst
    if redis is None:
        return LocalRateLimiter(settings.auth_failure_rate, burst)
    return RedisRateLimiter(redis, settings.redis_prefix, settings.auth_failure_rate, burst)
