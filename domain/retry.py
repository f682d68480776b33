"""How the product's long-running tasks wait out a failure: a growing pause between tries, and periodic
actions that keep their period through failures. Every retry and periodic loop of the executors, the
adapters and the entrypoints goes through these two.

Hand-written rather than tenacity: the project does not depend on it, and what the loops need (a capped
exponential pause, one warning per outage) is these few lines."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import NoReturn, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Pauses of ``first`` seconds, growing by ``factor`` up to ``limit``, then ``limit`` for ever."""

    first: float
    limit: float
    factor: float = 2.0

    def pauses(self) -> Iterator[float]:
        pause = self.first
        while True:
            yield pause
            pause = min(pause * self.factor, self.limit)


async def retrying(
    call: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    final: tuple[type[BaseException], ...] = (),
    attempts: int | None = None,
    on_failure: Callable[[BaseException, float], None] | None = None,
) -> T:
    """``call()`` until it returns, pausing as ``backoff`` says after each failure of ``retry_on``; a
    failure of ``final`` (or of anything else) is raised at once, and the failure of the last of
    ``attempts`` (None: no limit) is raised too. ``on_failure(error, pause)`` is told of each retry."""
    pauses = backoff.pauses()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except final:
            raise
        except retry_on as error:
            if attempts is not None and attempt >= attempts:
                raise
            pause = next(pauses)
            if on_failure is not None:
                on_failure(error, pause)
            await asyncio.sleep(pause)


async def every(
    interval: float,
    action: Callable[[], Awaitable[object]],
    what: str,
    log: logging.Logger,
    *,
    at_once: bool = False,
) -> NoReturn:
    """Run ``action`` every ``interval`` seconds for ever (first at once, or after one interval). A failure
    is logged once, when it starts, and the next interval tries again: a database or Redis away for a
    while neither ends the loop nor fills the log."""
    failing = False
    if not at_once:
        await asyncio.sleep(interval)
    while True:
        try:
            await action()
            failing = False
        except Exception:
            if not failing:
                log.warning("cannot %s; trying again every %g s", what, interval, exc_info=True)
            failing = True
        await asyncio.sleep(interval)
