"""Batch loading of workflows by id, so a page of runs reads its workflows in one query."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from ptw.domain.services import WorkflowService
from ptw.domain.tenancy import Actor
from ptw.domain.workflows import Workflow


def workflow_loader(
    service: WorkflowService, actor: Actor, *, cache: bool
) -> DataLoader[str, Workflow | None]:
    async def load(ids: Sequence[str]) -> list[Workflow | None]:
        return await service.get_many(actor, ids)

    return DataLoader(load_fn=load, cache=cache)
