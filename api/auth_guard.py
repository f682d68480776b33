"""Floods of bad keys refused before they reach the database: a client address that keeps failing to
authenticate is refused for a while without a lookup, and a key prefix just looked up and found missing
is answered from memory for a few seconds.

Each authentication is one SQL round trip; a flood of well-formed unknown keys from one address made the
database the bottleneck of every tenant. Failures are counted per address in the failure limiter (Redis
in production, so the replicas count together); once an address's bucket is empty, this replica refuses
it with RATE_LIMITED until the bucket has a token again. Unknown prefixes only are remembered, never a
wrong secret of a known prefix: else anyone who saw a key's (public) prefix could lock its owner out.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Protocol

from ptw.domain.errors import RateLimited, Unauthenticated
from ptw.domain.keys import prefix_of

REMEMBERED = 10_000  # addresses and prefixes kept by one replica; the least recent are forgotten
UNKNOWN_FOR = 10.0  # seconds an unknown prefix is answered from memory (a new key has a fresh prefix)


class Limiter(Protocol):
    """A token bucket per key (``ptw.infra.ratelimit``): 0 when a token was taken, else the wait."""

    async def take(self, key_id: str) -> float: ...


class AuthenticationGuard:
    def __init__(self, failures: Limiter | None, *, unknown_for: float = UNKNOWN_FOR) -> None:
        self.failures, self.unknown_for = failures, unknown_for
        self._blocked: OrderedDict[str, float] = OrderedDict()  # address → refused until (monotonic)
        self._unknown: OrderedDict[str, float] = OrderedDict()  # key prefix → unknown until

    def check(self, address: str | None, secret: str | None) -> None:
        """Raise at once, with no lookup, for a blocked address or a prefix known to be missing."""
        now = time.monotonic()
        until = self._blocked.get(address or "", 0.0)
        if until > now:
            retry = max(1, math.ceil(until - now))
            raise RateLimited(f"too many failed authentications: retry in {retry} s", retryAfter=retry)
        prefix = prefix_of(secret) if secret else None
        if prefix is not None and self._unknown.get(prefix, 0.0) > now:
            raise Unauthenticated("invalid or revoked API key")

    async def failed(self, address: str | None, error: Unauthenticated) -> None:
        """Count a failed authentication of ``address``; remember the prefix it named if it is unknown."""
        now = time.monotonic()
        unknown = error.details.get("unknown")
        if isinstance(unknown, str):
            _remember(self._unknown, unknown, now + self.unknown_for)
        if self.failures is None or not address:
            return
        wait = await self.failures.take(f"auth:{address}")
        if wait > 0:
            _remember(self._blocked, address, now + wait)


def _remember(entries: OrderedDict[str, float], key: str, until: float) -> None:
    entries.pop(key, None)
    entries[key] = until
    while len(entries) > REMEMBERED:
        entries.popitem(last=False)
