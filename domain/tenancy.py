"""Projects (tenants), API keys, roles and the authenticated actor that every service checks."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from ptw.domain.errors import BadInput, Forbidden, NotFound


class Role(enum.IntEnum):
    """Ordered so that a higher role includes the lower ones."""

    VIEWER = 1
    MEMBER = 2
    ADMIN = 3


@dataclass
class Project:
    id: str
    name: str
    created_at: datetime


@dataclass
class ApiKey:
    """A key is identified by its public ``prefix``; only a hash of its secret is kept."""

    id: str
    prefix: str
    secret_hash: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class Membership:
    key_id: str
    project_id: str
    role: Role


@dataclass(frozen=True)
class Actor:
    """Who is calling: a key and its role in each project it may see."""

    key_id: str
    roles: dict[str, Role] = field(default_factory=dict)
    name: str | None = None

    @property
    def project_ids(self) -> list[str]:
        return sorted(self.roles)

    def can_see(self, project_id: str | None) -> bool:
        return project_id is None or project_id in self.roles

    def require(self, project_id: str, role: Role, kind: str = "Project", ident: object = None) -> None:
        """Raise NotFound for a project the actor cannot see (indistinguishable from a missing one),
        Forbidden when it can see it but its role is too low."""
        held = self.roles.get(project_id)
        if held is None:
            raise NotFound.of(kind, ident if ident is not None else project_id)
        if held < role:
            raise Forbidden(f"this needs the {role.name.lower()} role in the project")

    def default_project(self, project_id: str | None) -> str:
        """The project an action targets: the one given, or the actor's only project."""
        if project_id is not None:
            return project_id
        if len(self.roles) == 1:
            return next(iter(self.roles))
        if not self.roles:
            raise BadInput("this key belongs to no project", field="projectId")
        raise BadInput("projectId is required: this key can see several projects", field="projectId")
