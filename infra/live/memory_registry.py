"""The in-process executor registry of embedded mode: the local executors announce their state here."""

from __future__ import annotations

from domain.executors import ExecutorState


class InMemoryExecutorRegistry:
    def __init__(self) -> None:
        self._executors: dict[str, ExecutorState] = {}

    async def announce(self, state: ExecutorState) -> None:
        self._executors[state.id] = state

    async def leave(self, executor_id: str) -> None:
        self._executors.pop(executor_id, None)

    async def alive(self) -> list[ExecutorState]:
        return sorted(self._executors.values(), key=lambda e: e.id)
