"""The Redis side of the read cache: MGET of cached JSON, fills, tombstones, counters, outage fallback.

Keys carry the project (``{prefix}:cache:v2:p:{project or _}:{kind}:{id}``, see ``infra/redis_keys.py``),
but the DataLoaders look objects up by id alone. An object's project never changes, so where an id lives
is an immutable fact, kept twice: in a bounded in-process memo, and in Redis under a ``where`` key written
with every value (with a longer TTL, so it outlives the value) for the replicas that have not seen the id.
A lookup of ids the memo knows is one MGET; ids it does not know cost one more MGET of their ``where`` keys.

Invalidation writes a short-lived tombstone instead of deleting, and fills only write where no key is
(``SET NX``): a reader that read the old row just before a commit cannot put it back after the commit's
invalidation. Every key has a TTL, so an invalidation lost to a Redis error heals by itself.

Redis is an optimization: any Redis error is logged (once per outage), counted, and read as a miss, and
reads and fills skip Redis for ``retry_after`` seconds after one. Invalidations are always attempted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ptw.infra import redis_keys

log = logging.getLogger(__name__)

TOMBSTONE = "-"  # cached values are JSON objects: a dash is never one
Raw = bytes | str | None


@dataclass
class CacheStats:
    """Counters of one process's cache, by kind of object (what ``/metrics`` exports)."""

    hits: Counter[str] = field(default_factory=Counter)
    misses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {"hits": dict(self.hits), "misses": dict(self.misses), "errors": dict(self.errors)}


def _text(raw: Raw) -> str | None:
    """Values as text whether or not the client decodes responses; a tombstone reads as nothing."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    return None if text is None or text == TOMBSTONE else text


class RedisCache:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        ttl: float = 300.0,
        tombstone_ttl: float = 5.0,
        timeout: float = 0.5,
        retry_after: float = 1.0,
        memo_size: int = 100_000,
    ) -> None:
        self.redis, self.prefix = redis, prefix
        self.ttl_ms = int(ttl * 1000)
        self.tombstone_ms = int(tombstone_ttl * 1000)
        self.timeout, self.retry_after = timeout, retry_after
        self.stats = CacheStats()
        self._memo: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._memo_size = memo_size
        self._uncached: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._failing = False
        self._skip_until = 0.0

    def key(self, kind: str, project_id: str | None, ident: str) -> str:
        return redis_keys.cached_object(self.prefix, project_id, kind, ident)

    # --- where each id lives ---------------------------------------------------------------------------

    def remember(self, kind: str, ident: str, project_id: str | None) -> None:
        self._memorize(kind, ident, redis_keys.cache_project_segment(project_id))

    def known_key(self, kind: str, ident: str) -> str | None:
        """The value key of an id whose project this process knows, else None."""
        segment = self._memo.get((kind, ident))
        # A segment is a project id or "_", which cached_object keeps as it is.
        return None if segment is None else redis_keys.cached_object(self.prefix, segment, kind, ident)

    def _memorize(self, kind: str, ident: str, segment: str) -> None:
        memo = self._memo
        memo[(kind, ident)] = segment
        memo.move_to_end((kind, ident))
        if len(memo) > self._memo_size:
            memo.popitem(last=False)

    # --- what is not worth asking for ----------------------------------------------------------------

    def saw_uncacheable(self, kind: str, ident: str, uncacheable: bool) -> None:
        """Whether this process last read ``ident`` in a state that is never cached (a live run): such an
        id is read from the database straight away, since a lookup would cost a Redis round trip for a
        miss every time (each supervisor reads its run's status every second)."""
        key = (kind, ident)
        if not uncacheable:
            self._uncached.pop(key, None)
            return
        self._uncached[key] = None
        self._uncached.move_to_end(key)
        if len(self._uncached) > self._memo_size:
            self._uncached.popitem(last=False)

    def worth_looking_up(self, kind: str, ident: str) -> bool:
        return (kind, ident) not in self._uncached

    # --- reads ---------------------------------------------------------------------------------------

    async def lookup(self, kind: str, ids: Sequence[str]) -> dict[str, str]:
        """The cached JSON of each of ``ids`` found (hits); every other id counts as a miss."""
        if not ids:
            return {}
        found: dict[str, str] = {}
        known = {i: k for i in ids if (k := self.known_key(kind, i)) is not None}
        unknown = [i for i in ids if i not in known]
        keys = [*known.values(), *(redis_keys.cached_location(self.prefix, kind, i) for i in unknown)]
        replies = await self._mget(kind, keys)
        if replies is not None:
            for ident, raw in zip(known, replies[: len(known)], strict=True):
                if (text := _text(raw)) is not None:
                    found[ident] = text
            located: dict[str, str] = {}
            for ident, raw in zip(unknown, replies[len(known) :], strict=True):
                if (segment := _text(raw)) is not None:
                    located[ident] = redis_keys.cached_object(self.prefix, segment, kind, ident)
                    self._memorize(kind, ident, segment)
            if located and (values := await self._mget(kind, list(located.values()))) is not None:
                for ident, raw in zip(located, values, strict=True):
                    if (text := _text(raw)) is not None:
                        found[ident] = text
        self.stats.hits[kind] += len(found)
        self.stats.misses[kind] += len(ids) - len(found)
        return found

    async def get(self, kind: str, key: str) -> str | None:
        """One cached value by its full key (lookups by name), counted as a hit or a miss."""
        replies = await self._mget(kind, [key])
        text = _text(replies[0]) if replies else None
        (self.stats.hits if text is not None else self.stats.misses)[kind] += 1
        return text

    def count_error(self, kind: str) -> None:
        self.stats.errors[kind] += 1

    async def _mget(self, kind: str, keys: list[str]) -> list[Raw] | None:
        """None when Redis failed or is being skipped after a failure."""
        if time.monotonic() < self._skip_until:
            return None
        replies: list[Raw] | None = None
        async with self._guarded(kind):
            replies = await self.redis.mget(keys)
        return replies

    # --- writes --------------------------------------------------------------------------------------

    async def fill(self, kind: str, entries: Mapping[str, str], locations: Mapping[str, str | None]) -> None:
        """Cache ``entries`` (key → JSON) where no key (value or tombstone) is, and where the ``locations``
        (id → project) are, in one pipelined round trip."""
        if not entries or time.monotonic() < self._skip_until:
            return
        async with self._guarded(kind):
            pipe = self.redis.pipeline(transaction=False)
            for key, value in entries.items():
                pipe.set(key, value, px=self.ttl_ms, nx=True)
            for ident, project_id in locations.items():
                where = redis_keys.cached_location(self.prefix, kind, ident)
                pipe.set(where, redis_keys.cache_project_segment(project_id), px=2 * self.ttl_ms)
            await pipe.execute()

    async def invalidate(self, keys: Sequence[str]) -> None:
        """Replace ``keys`` by tombstones: nothing can be filled there until they expire."""
        if not keys:
            return
        async with self._guarded("invalidate"):
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, TOMBSTONE, px=self.tombstone_ms)
            await pipe.execute()

    @asynccontextmanager
    async def _guarded(self, kind: str) -> AsyncIterator[None]:
        """Run a Redis call with a deadline; a failure is counted, logged once, and swallowed."""
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except (RedisError, OSError, TimeoutError) as e:
            self.stats.errors[kind] += 1
            self._skip_until = time.monotonic() + self.retry_after
            if not self._failing:
                self._failing = True
                log.warning("the Redis cache failed (%r); reading from the database meanwhile", e)
            return
        if self._failing:
            self._failing = False
            log.info("the Redis cache answers again")
