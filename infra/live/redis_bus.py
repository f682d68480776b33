"""The event bus of production mode: Redis pub/sub between processes, fanned out to local subscribers.

Each process holds ONE pub/sub connection, subscribed to the channels of the topics its subscribers
follow, and one listener task that hands every message to an in-process bus (``InMemoryEventBus``):
that bus's subscriptions (bounded, buffered from subscription, cut off when too slow) are the ones
given out here, so a thousand followers of a run cost one Redis subscription, not a thousand.

Pub/sub delivers at most once: an event published while the connection is down is lost to this
process. That is acceptable because no subscriber depends on one event: metric followers read the
metric log after their cursor, and a run's state is re-read on reconnection by whoever shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ptw.domain.events import Event
from ptw.domain.ports import Subscription
from ptw.domain.retry import Backoff, retrying
from ptw.infra import redis_keys
from ptw.infra.live.event_codec import decode_event, encode_event
from ptw.infra.live.memory_bus import InMemoryEventBus

log = logging.getLogger(__name__)

# An event of several topics is published once per topic's channel: a process subscribed to more
# than one of them must hand it out once, so it remembers the ids of the last events it handed out.
RECENT_EVENTS = 4096
RECONNECT_BACKOFF = Backoff(first=0.05, limit=2.0)


class RedisEventBus:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix
        self._local = InMemoryEventBus()
        self._pubsub: PubSub = redis.pubsub()
        self._listener: asyncio.Task[None] | None = None
        self._reconnecting = False
        # Per channel: how many local subscriptions need it, and when Redis confirmed the subscription.
        self._users: dict[str, int] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()  # orders SUBSCRIBE/UNSUBSCRIBE with the bookkeeping above
        self._origin = secrets.token_hex(6)
        self._published = 0
        self._recent: OrderedDict[str, None] = OrderedDict()

    async def publish(self, topics: Sequence[str], event: Event) -> None:
        self._published += 1
        header = {"id": f"{self._origin}:{self._published}", "topics": list(topics)}
        message = json.dumps(header, separators=(",", ":")).encode() + b"\n" + encode_event(event)
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic in topics:
                pipe.publish(self._channel(topic), message)
            await pipe.execute()

    @asynccontextmanager
    async def subscribe(self, topics: Sequence[str]) -> AsyncIterator[Subscription]:
        async with self._local.subscribe(topics) as sub:
            channels = [self._channel(t) for t in dict.fromkeys(topics)]
            await self._join(channels)
            try:
                yield sub
            finally:
                await self._leave(channels)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self._local.close()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    def _channel(self, topic: str) -> str:
        return redis_keys.event_channel(self.prefix, topic)

    async def _join(self, channels: list[str]) -> None:
        """Count the subscription in, and return once Redis confirmed every channel it needs: from then
        on, whatever is published reaches it (that is the 'buffered from subscription' promise)."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            new = [c for c in channels if self._users.get(c, 0) == 0]
            for c in channels:
                self._users[c] = self._users.get(c, 0) + 1
            for c in new:
                self._ready[c] = loop.create_future()
            if new:
                try:
                    await self._pubsub.subscribe(*new)
                except BaseException:
                    self._forget(channels)
                    raise
            if self._listener is None:
                self._listener = asyncio.create_task(self._listen(), name="redis-event-bus")
            waiting = [self._ready[c] for c in channels]
        try:
            await asyncio.gather(*(asyncio.shield(f) for f in waiting))
        except BaseException:
            await self._leave(channels)
            raise

    async def _leave(self, channels: list[str]) -> None:
        async with self._lock:
            unused = self._forget(channels)
            if unused:
                # A connection down now is resubscribed without these (redis-py forgets them at once).
                with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
                    await self._pubsub.unsubscribe(*unused)

    def _forget(self, channels: list[str]) -> list[str]:
        unused = []
        for c in channels:
            self._users[c] -= 1
            if self._users[c] == 0:
                del self._users[c]
                ready = self._ready.pop(c)
                if not ready.done():
                    ready.cancel()
                unused.append(c)
        return unused

    async def _listen(self) -> None:
        """Read the pub/sub connection forever; when it drops, reconnect (redis-py resubscribes the
        connection's channels as it connects) with a growing pause while Redis stays away."""
        while True:
            message = await retrying(
                lambda: self._pubsub.get_message(timeout=None),
                RECONNECT_BACKOFF,
                retry_on=(RedisConnectionError, RedisTimeoutError, OSError),
                on_failure=self._lost,
            )
            self._reconnecting = False
            if message is not None:
                await self._handle(message)

    def _lost(self, error: BaseException, _pause: float) -> None:
        if not self._reconnecting:  # said once an outage, not at every reconnection attempt
            log.warning("event bus: pub/sub connection lost (%s); reconnecting", error)
            self._reconnecting = True

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        if kind == "subscribe":
            ready = self._ready.get(channel)
            if ready is not None and not ready.done():
                ready.set_result(None)
        elif kind == "message":
            try:
                await self._deliver(message["data"])
            except Exception:  # one unreadable message must not stop the bus
                log.exception("event bus: cannot read a message on %s", channel)

    async def _deliver(self, data: bytes) -> None:
        head, _, body = data.partition(b"\n")
        header = json.loads(head)
        if header["id"] in self._recent:
            return
        self._recent[header["id"]] = None
        if len(self._recent) > RECENT_EVENTS:
            self._recent.popitem(last=False)
        await self._local.publish(header["topics"], decode_event(body))
