"""Who drives an optimization now: a PostgreSQL advisory lock across replicas, an asyncio lock in one process.

A session-level advisory lock is held by a connection of its own for as long as the driver works on the
optimization; if the process dies, PostgreSQL ends its session and the lock is free for another replica.
``pg_try_advisory_lock`` does not wait: a replica that finds the search held skips it this tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)
# The key is a 64-bit hash of the optimization id in a namespace of ours, so other users of advisory
# locks on the same database do not collide with these.
_TRY = text("SELECT pg_try_advisory_lock(hashtextextended('ptw-optimization:' || :id, 0))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended('ptw-optimization:' || :id, 0))")


class PostgresLease:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def hold(self, optimization_id: str) -> AsyncIterator[bool]:
        async with self.engine.connect() as conn:
            held = bool(await conn.scalar(_TRY, {"id": optimization_id}))
            await conn.commit()  # the lock belongs to the session, not to this transaction
            try:
                yield held
            finally:
                if held:
                    # A connection going back to the pool must not keep the lock; if unlocking fails, the
                    # connection is invalidated, and closing it ends the session and its locks.
                    try:
                        await conn.scalar(_UNLOCK, {"id": optimization_id})
                        await conn.commit()
                    except Exception:
                        log.warning("cannot release the lease of optimization %s", optimization_id)
                        with contextlib.suppress(Exception):
                            await conn.invalidate()


class LocalLease:
    """One process drives everything (embedded mode); the lock only keeps two of its tasks apart."""

    def __init__(self) -> None:
        self._held: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, optimization_id: str) -> AsyncIterator[bool]:
        lock = self._held.setdefault(optimization_id, asyncio.Lock())
        if lock.locked():
            yield False
            return
        try:
            async with lock:
                yield True
        finally:
            self._held.pop(optimization_id, None)
