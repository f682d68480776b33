"""GraphQL types of tenancy: projects, roles, API keys and the viewer."""

from __future__ import annotations

from datetime import datetime

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_id
from ptw.api.node import Node
from ptw.domain import tenancy

Role = strawberry.enum(tenancy.Role)


@strawberry.type
class Project(Node):
    name: str
    role: Role = strawberry.field(description="The caller's role in this project.")
    created_at: datetime

    @classmethod
    def from_domain(cls, project: tenancy.Project, role: tenancy.Role) -> Project:
        return cls.of(project, role=role)

    @strawberry.field(description="The project's API keys and their roles; for its admins only.")
    async def api_keys(self, info: Info) -> list[ProjectKey]:
        found = await info.context.services.access.keys_of(info.context.actor, decode_id(self.id, "Project"))
        return [ProjectKey(api_key=ApiKey.from_domain(key), role=role) for key, role in found]


@strawberry.type
class ApiKey(Node):
    name: str | None
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_domain(cls, key: tenancy.ApiKey) -> ApiKey:
        return cls.of(key)


@strawberry.type(description="A key of a project with its role there.")
class ProjectKey:
    api_key: ApiKey
    role: Role


@strawberry.type(description="A key just created; its secret is shown this once and never again.")
class NewApiKey:
    id: strawberry.ID
    secret: str
    role: Role
    project: Project
    api_key: ApiKey


@strawberry.type(description="Who is calling: the API key, its name, and its projects with their roles.")
class Viewer:
    id: strawberry.ID
    name: str | None
    projects: list[Project]
