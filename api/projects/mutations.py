"""Mutations of tenancy: projects and API keys."""

from __future__ import annotations

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_id, encode_id
from ptw.api.projects.types import ApiKey, NewApiKey, Project, Role
from ptw.domain import tenancy


@strawberry.type
class ProjectMutations:
    @strawberry.mutation(description="A new project; the calling (admin) key becomes its admin.")
    async def create_project(self, info: Info, name: str) -> Project:
        project = await info.context.services.access.create_project(info.context.actor, name)
        return Project.from_domain(project, tenancy.Role.ADMIN)

    @strawberry.mutation(description="A new API key for a project. Its secret is in this answer only.")
    async def create_api_key(
        self, info: Info, project_id: strawberry.ID, role: Role, name: str | None = None
    ) -> NewApiKey:
        issued = await info.context.services.access.create_api_key(
            info.context.actor, decode_id(project_id, "Project"), role, name
        )
        return NewApiKey(
            id=strawberry.ID(encode_id("ApiKey", issued.key.id)),
            secret=issued.secret,
            role=issued.role,
            project=Project.from_domain(issued.project, info.context.actor.roles[issued.project.id]),
            api_key=ApiKey.from_domain(issued.key),
        )

    @strawberry.mutation(description="Revoke a key: it stops authenticating at once.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKey:
        key = await info.context.services.access.revoke_api_key(info.context.actor, decode_id(id, "ApiKey"))
        return ApiKey.from_domain(key)
