"""The in-process event bus of embedded mode: fan-out to subscriber queues, buffered from subscription."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ptw.domain.events import Event

# A subscriber that falls this far behind is cut off rather than let memory grow without bound;
# its client reconnects with its cursor and replays from storage, so nothing is lost.
MAX_BACKLOG = 10_000


class SubscriberTooSlow(Exception):
    """Raised in a subscriber's iteration when it fell too far behind the live stream."""


class _Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(MAX_BACKLOG)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            if self.overflowed and self.queue.empty():
                raise SubscriberTooSlow("subscriber fell behind; resume from its cursor")
            event = await self.queue.get()
            if event is None:
                return
            yield event


class InMemoryEventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[_Subscription]] = defaultdict(set)

    async def publish(self, topics: Sequence[str], event: Event) -> None:
        delivered: set[int] = set()
        for topic in topics:
            for sub in tuple(self._subscribers.get(topic, ())):
                if id(sub) not in delivered:
                    delivered.add(id(sub))
                    sub.offer(event)

    @asynccontextmanager
    async def subscribe(self, topics: Sequence[str]) -> AsyncIterator[_Subscription]:
        sub = _Subscription()
        for topic in topics:
            self._subscribers[topic].add(sub)
        try:
            yield sub
        finally:
            for topic in topics:
                subs = self._subscribers.get(topic)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subscribers[topic]

    async def close(self) -> None:
        for subs in self._subscribers.values():
            for sub in subs:
                sub.offer(None)  # type: ignore[arg-type]
