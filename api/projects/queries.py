"""Queries about the caller: ``viewer``."""

from __future__ import annotations

import strawberry

from ptw.api.context import Info
from ptw.api.ids import encode_id
from ptw.api.projects.types import Project, Viewer


@strawberry.type
class ProjectQueries:
    @strawberry.field(description="Who am I: my key, my projects and my role in each.")
    async def viewer(self, info: Info) -> Viewer:
        actor = info.context.actor
        projects = await info.context.services.access.projects_of(actor)
        return Viewer(
            id=strawberry.ID(encode_id("ApiKey", actor.key_id)),
            name=actor.name,
            projects=[Project.from_domain(project, role) for project, role in projects],
        )
