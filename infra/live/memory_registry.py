"""The in-process executor registry of embedded mode: the local executors announce their state here."""

from __future__ import annotations

import time

from ptw.domain.executors import AutoscalerState, ExecutorState


class InMemoryExecutorRegistry:
    def __init__(self) -> None:
        self._executors: dict[str, ExecutorState] = {}
        self._autoscalers: dict[str, tuple[AutoscalerState, float]] = {}

    async def announce(self, state: ExecutorState) -> None:
        self._executors[state.id] = state

    async def leave(self, executor_id: str) -> None:
        self._executors.pop(executor_id, None)

    async def alive(self) -> list[ExecutorState]:
        return sorted(self._executors.values(), key=lambda e: e.id)

    async def publish_autoscaler(self, state: AutoscalerState, ttl: float) -> None:
        self._autoscalers[state.id] = (state, time.monotonic() + ttl)

    async def retire_autoscaler(self, autoscaler_id: str) -> None:
        self._autoscalers.pop(autoscaler_id, None)

    async def autoscalers(self) -> list[AutoscalerState]:
        now = time.monotonic()
        return [
            s for s, expires in sorted(self._autoscalers.values(), key=lambda e: e[0].id) if expires >= now
        ]
