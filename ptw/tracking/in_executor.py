"""``ptw.init()`` inside our executors: the run being executed, driven through its RunContext."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from ptw.executors import current


class ExecutorRun:
    """The same surface as ``TrackedRun``; the executor owns the run, so ``finish`` only stops logging
    and how the function ends decides the run's status, as for any workflow."""

    def __init__(self, ctx: Any, params: Mapping[str, Any] | None) -> None:
        self._ctx = ctx
        # The run's own params (checked against the workflow's schema) win over the script's defaults.
        self.params: dict[str, Any] = {**dict(params or {}), **ctx.params}
        self.summary: dict[str, Any] = current.tracked_summary()
        self.id = ctx.run_id
        self.short_id = ctx.run_id[:8]
        self.name: str | None = None
        self.device = ctx.device
        self._next_step = 0
        self._finished = False

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if step is None:
            step = self._next_step
        self._ctx.log(metrics, step)
        self._next_step = max(self._next_step, int(step) + 1)

    @property
    def cancelled(self) -> bool:
        return bool(self._ctx.cancelled)

    def finish(self, status: str = "SUCCEEDED", error: str | None = None) -> None:
        self._finished = True

    def __enter__(self) -> ExecutorRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish()
