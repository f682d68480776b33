"""The run monitor: finds attempts whose executor stopped heartbeating and hands them to recovery.

Executors write ``heartbeat_at`` on their runs every few seconds (PostgreSQL, not Redis: a flushed Redis
must not look like a dead fleet). The monitor never compares that time with its own clock: it notes when
it first saw each attempt's current heartbeat, and judges an attempt lost once the same heartbeat was
seen for ``lost_after`` seconds of its own time. So clocks of different machines may disagree, and a
monitor that could not read the database for a while (or just started) waits a full ``lost_after`` of
fresh observation before judging anything: executors that were cut off from the database with it get
time to beat again. Every API replica may run one; ``RecoveryService.recover_silent`` re-checks each
judgement under the run's row lock, so two replicas never act twice on one attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ptw.domain.ports import ExecutorRegistry
from ptw.domain.runs import Run
from ptw.domain.services.recovery import RecoveryService, Silence


@dataclass(frozen=True)
class _Seen:
    attempt: int
    heartbeat_at: datetime | None
    since: float  # monotonic time when this heartbeat was first seen


@dataclass
class RunMonitor:
    recovery: RecoveryService
    lost_after: float = 20.0
    clock: Callable[[], float] = time.monotonic
    # Embedded mode judges only external runs: its own executors live and die with the server process.
    only_external: bool = False
    _seen: dict[str, _Seen] = field(default_factory=dict)

    async def check(self) -> list[Run]:
        """One look at the active runs; returns those settled as lost (re-queued, failed or cancelled).
        Raises when the database cannot be read, after forgetting what it had seen (see the module)."""
        try:
            active = await self.recovery.active()
        except Exception:
            self._seen.clear()
            raise
        if self.only_external:
            active = [run for run in active if run.external]
        now = self.clock()
        seen: dict[str, _Seen] = {}
        silent: list[Silence] = []
        for run in active:
            before = self._seen.get(run.id)
            unchanged = before is not None and (before.attempt, before.heartbeat_at) == (
                run.attempt,
                run.heartbeat_at,
            )
            since = before.since if unchanged and before is not None else now
            seen[run.id] = _Seen(run.attempt, run.heartbeat_at, since)
            if now - since >= self.lost_after:
                silent.append(Silence(run.id, run.attempt, run.heartbeat_at, run.executor))
        self._seen = seen
        if not silent:
            return []
        reason = f"no heartbeat for {self.lost_after:g} s"
        return await self.recovery.recover_silent(silent, reason)


@dataclass
class PlacementWatch:
    """Runs that no live executor can take (say, GPU runs with no GPU worker) are flagged, not dropped:
    once no executor of a resource class was seen for ``waiting_after`` seconds (of this watch's own
    time: the registry lives in Redis, which may have just been emptied), its queued runs that waited
    that long say so in ``error`` and in runEvents, and stay queued."""

    recovery: RecoveryService
    registry: ExecutorRegistry
    waiting_after: float = 120.0
    clock: Callable[[], float] = time.monotonic
    _served_at: dict[str, float] = field(default_factory=dict)
    _started: float | None = None

    async def check(self, resource_classes: tuple[str, ...] = ("cpu", "gpu")) -> list[Run]:
        now = self.clock()
        if self._started is None:
            self._started = now
        for executor in await self.registry.alive():
            for resource_class in executor.resource_classes:
                self._served_at[resource_class] = now
        unserved = [
            rc
            for rc in resource_classes
            if now - self._served_at.get(rc, self._started) >= self.waiting_after
        ]
        return await self.recovery.flag_unplaceable(unserved, timedelta(seconds=self.waiting_after))
