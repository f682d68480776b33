"""A run's stdout and stderr, stored and published as run log lines, within a rate and a line length.

Lines are handed to the control plane in batches (at most ``FLUSH_INTERVAL`` after the first of a batch, or
``FLUSH_LINES`` at once): one transaction a batch, not one a line, so a chatty run costs the database little.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from datetime import UTC, datetime

from ptw.domain.services.execution import ExecutionService
from ptw.domain.token_bucket import TokenBucket

log = logging.getLogger(__name__)

MAX_LINE = 2000
LINES_PER_SECOND = 200.0
BURST = 1000
STDERR_TAIL_LINES = 40
FLUSH_INTERVAL = 0.2
FLUSH_LINES = 500


class RunOutput:
    """Lines beyond the rate are dropped and counted (a run printing in a tight loop must not flood
    subscribers); the last stderr lines are kept to explain a child that died without a word."""

    def __init__(self, execution: ExecutionService, run_id: str, project_id: str) -> None:
        self.execution = execution
        self.run_id = run_id
        self.project_id = project_id
        self._lines = TokenBucket.full(LINES_PER_SECOND, BURST, time.monotonic())
        self._dropped = 0
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._batch: list[tuple[str, str, datetime]] = []
        self._timer: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()  # batches leave in order

    async def pump(self, stream: asyncio.StreamReader | None, name: str) -> None:
        """Publish each line of ``stream`` until it ends. Reads in chunks: a line may be any length."""
        if stream is None:
            return
        pending = b""
        while chunk := await stream.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                await self.line(line.decode(errors="replace").rstrip("\r"), name)
            if len(pending) > MAX_LINE * 4:  # a line without end: publish its start, skip the rest
                await self.line(pending.decode(errors="replace"), name)
                pending = b""
        if pending:
            await self.line(pending.decode(errors="replace"), name)

    async def line(self, text: str, stream: str) -> None:
        if len(text) > MAX_LINE:
            text = text[:MAX_LINE] + f"... [{len(text) - MAX_LINE} characters cut]"
        if stream == "stderr":
            self._stderr.append(text)
        if self._lines.take(time.monotonic()):
            self._dropped += 1
            return
        await self.flush_dropped()
        await self._publish(text, stream)

    async def system(self, text: str) -> None:
        await self._publish(text, "system")

    async def flush_dropped(self) -> None:
        """Say how many lines were dropped, and send every line held: the attempt's output is complete."""
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            await self._publish(
                f"{dropped} output lines dropped (over {LINES_PER_SECOND:.0f} lines/s)", "system"
            )
        await self.flush()

    async def flush(self) -> None:
        async with self._sending:
            batch, self._batch = self._batch, []
            if not batch:
                return
            try:
                await self.execution.log_lines(self.run_id, self.project_id, batch)
            except Exception:  # output is never worth failing a run for
                log.warning("run %s: cannot store %d output lines", self.run_id, len(batch), exc_info=True)

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    async def _publish(self, text: str, stream: str) -> None:
        self._batch.append((stream, text, datetime.now(UTC)))
        if len(self._batch) >= FLUSH_LINES:
            await self.flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_INTERVAL)
        await self.flush()
