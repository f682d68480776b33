"""GraphQL types of tenancy: projects, roles, API keys and the viewer."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from ptw.api.ids import encode_id
from ptw.api.node import Node
from ptw.domain import tenancy


@strawberry.enum
class Role(enum.Enum):
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"
    VIEWER = "VIEWER"

    @classmethod
    def from_domain(cls, role: tenancy.Role) -> Role:
        return cls[role.name]

    def to_domain(self) -> tenancy.Role:
        return tenancy.Role[self.name]


@strawberry.type
class Project(Node):
    name: str
    role: Role = strawberry.field(description="The caller's role in this project.")
    created_at: datetime

    @classmethod
    def from_domain(cls, project: tenancy.Project, role: tenancy.Role) -> Project:
        return cls(
            id=strawberry.ID(encode_id("Project", project.id)),
            name=project.name,
            role=Role.from_domain(role),
            created_at=project.created_at,
        )


@strawberry.type
class ApiKey(Node):
    name: str | None
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_domain(cls, key: tenancy.ApiKey) -> ApiKey:
        return cls(
            id=strawberry.ID(encode_id("ApiKey", key.id)),
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


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
