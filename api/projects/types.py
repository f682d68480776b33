"""GraphQL types of tenancy: projects, roles, API keys and the viewer."""

from __future__ import annotations

from datetime import datetime

import strawberry

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
