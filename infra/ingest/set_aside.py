"""Metric log entries that cannot be stored, kept aside with their reason so that storage goes on.

One such entry (a key PostgreSQL cannot hold, columns that do not add up) would otherwise fail every round
of its ingester, and with it the storage of every tenant's metrics. It goes to a capped stream of its own,
entry and reason, where an admin can read it (``recent``; ``XREVRANGE <prefix>:metrics-set-aside``), and
is counted in ``/metrics`` as ``ptw_ingest_set_aside_total``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ptw.infra import redis_keys

log = logging.getLogger(__name__)

KEPT = 10_000  # entries the stream keeps, newest last; the count is of every entry ever set aside


@dataclass(frozen=True)
class SetAsideEntry:
    run_id: str
    entry_id: str
    reason: str
    at: float  # Unix seconds


class SetAside:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.stream = redis_keys.metric_set_aside(prefix)
        self.counter = redis_keys.metric_set_aside_count(prefix)

    async def put(
        self, run_id: str, entry_id: Any, fields: dict[Any, Any] | None, why: str, reason: str
    ) -> None:
        """Keep the entry's fields with ``reason``; ``why`` is a word for the log, which never holds what a
        tenant logged (the reason may quote a metric name)."""
        entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        log.warning("metric ingester: set aside entry %s of run %s (%s)", entry, run_id, why)
        kept: dict[Any, Any] = {b"run": run_id, b"entry": entry, b"reason": reason[:2000], b"at": time.time()}
        for name, value in (fields or {}).items():
            kept[b"f:" + (name if isinstance(name, bytes) else str(name).encode())] = value
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self.stream, kept, maxlen=KEPT, approximate=True)
            pipe.incr(self.counter)
            await pipe.execute()

    async def count(self) -> int:
        return int(await self.redis.get(self.counter) or 0)

    async def recent(self, count: int = 100) -> list[SetAsideEntry]:
        """The newest entries set aside, newest first."""
        found = await self.redis.xrevrange(self.stream, count=count)
        return [
            SetAsideEntry(
                _text(fields[b"run"]), _text(fields[b"entry"]), _text(fields[b"reason"]), float(fields[b"at"])
            )
            for _, fields in found
        ]


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
