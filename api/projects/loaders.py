"""Batch loading of projects: the caller's projects are read once, in one query, per request."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from ptw.domain.services import AccessService
from ptw.domain.tenancy import Actor, Project


def project_loader(service: AccessService, actor: Actor, *, cache: bool) -> DataLoader[str, Project | None]:
    async def load(ids: Sequence[str]) -> list[Project | None]:
        found = {project.id: project for project, _ in await service.projects_of(actor)}
        return [found.get(project_id) for project_id in ids]

    return DataLoader(load_fn=load, cache=cache)
