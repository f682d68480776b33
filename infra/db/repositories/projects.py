"""Projects (tenants)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from ptw.domain.tenancy import Project
from ptw.infra.db.mapping import EntityMapping
from ptw.infra.db.models import Base, ProjectRow
from ptw.infra.db.repositories.base import SqlRepository

projects = Base.metadata.tables[ProjectRow.__tablename__]


mapping = EntityMapping(Project, projects)
_project = mapping.entity_of


class SqlProjectRepository(SqlRepository):
    async def add(self, project: Project) -> None:
        await self.insert(projects, mapping.values(project), f"project {project.name!r}")

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
