"""What a training loop hands to the RunContext: per-step losses logged in groups, checkpoint snapshots.

Reading a loss with ``.item()`` every step makes the host wait for the accelerator each step; holding the
detached losses and reading them in one transfer every few steps logs the same points without that stall.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class StepLosses:
    """Losses of the steps since the last flush, logged under one key at their own steps."""

    def __init__(self, ctx: Any, key: str) -> None:
        self._ctx = ctx
        self._key = key
        self._steps: list[int] = []
        self._losses: list[Tensor] = []
        self.last: float | None = None  # the latest value flushed

    def __len__(self) -> int:
        return len(self._steps)

    def add(self, loss: Tensor, step: int) -> None:
        self._losses.append(loss.detach())
        self._steps.append(step)

    def flush(self) -> None:
        if not self._steps:
            return
        values = torch.stack(self._losses).float().tolist()
        for step, value in zip(self._steps, values, strict=True):
            self._ctx.log({self._key: value}, step)
        self.last = values[-1]
        self._steps.clear()
        self._losses.clear()


def cpu_snapshot(state: Any) -> Any:
    """A copy of ``state`` with every tensor on the CPU.

    A copy, not a view, because the SDK may serialize in the background while training keeps changing the
    parameters in place; on the CPU, so a retry on a machine without the original device can load it.
    """
    if isinstance(state, Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {key: cpu_snapshot(value) for key, value in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(cpu_snapshot(value) for value in state)
    return state
