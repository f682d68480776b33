"""Batch loading of runs by id (optimization results and log events point at runs)."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from ptw.domain.run_story import RunAttempt
from ptw.domain.runs import Run
from ptw.domain.services import RunService
from ptw.domain.tenancy import Actor


def run_loader(service: RunService, actor: Actor, *, cache: bool) -> DataLoader[str, Run | None]:
    async def load(ids: Sequence[str]) -> list[Run | None]:
        return await service.get_many(actor, ids)

    return DataLoader(load_fn=load, cache=cache)


def attempts_loader(service: RunService, actor: Actor, *, cache: bool) -> DataLoader[str, list[RunAttempt]]:
    """Every run of a page's attempts in one query."""

    async def load(ids: Sequence[str]) -> list[list[RunAttempt]]:
        found = await service.attempts(actor, ids)
        return [found.get(i, []) for i in ids]

    return DataLoader(load_fn=load, cache=cache)
