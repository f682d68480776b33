"""Projects (tenants)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select

from ptw.domain.tenancy import Project
from ptw.infra.db.models import Base, ProjectRow
from ptw.infra.db.repositories.base import SqlRepository

projects = Base.metadata.tables[ProjectRow.__tablename__]


def _project(row: Row[Any]) -> Project:
    return Project(id=row.id, name=row.name, created_at=row.created_at)


class SqlProjectRepository(SqlRepository):
    async def add(self, project: Project) -> None:
        values = {"id": project.id, "name": project.name, "created_at": project.created_at}
        await self.insert(projects, values, f"project {project.name!r}")

    async def get(self, project_id: str) -> Project | None:
        row = (await self.session.execute(select(projects).where(projects.c.id == project_id))).first()
        return _project(row) if row else None

    async def get_by_name(self, name: str) -> Project | None:
        row = (await self.session.execute(select(projects).where(projects.c.name == name))).first()
        return _project(row) if row else None

    async def get_many(self, project_ids: Sequence[str]) -> list[Project]:
        if not project_ids:
            return []
        stmt = select(projects).where(projects.c.id.in_(project_ids)).order_by(projects.c.name)
        return [_project(r) for r in (await self.session.execute(stmt)).all()]
