"""A run's stdout and stderr, published line by line as run log events, within a rate and a line length."""

from __future__ import annotations

import asyncio
import collections
import logging
import time

from ptw.domain.services.execution import ExecutionService
from ptw.domain.token_bucket import TokenBucket

log = logging.getLogger(__name__)

MAX_LINE = 2000
LINES_PER_SECOND = 200.0
BURST = 1000
STDERR_TAIL_LINES = 40


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
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            await self._publish(
                f"{dropped} output lines dropped (over {LINES_PER_SECOND:.0f} lines/s)", "system"
            )

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    async def _publish(self, text: str, stream: str) -> None:
        try:
            await self.execution.log(self.run_id, self.project_id, text, stream)
        except Exception:  # a log line is live-only and never worth failing a run for
            log.warning("run %s: cannot publish a log line", self.run_id, exc_info=True)
