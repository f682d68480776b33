"""Projects (tenants)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from ptw.domain.quotas import ProjectQuota
from ptw.domain.tenancy import Project
from ptw.infra.db.mapping import EntityMapping
from ptw.infra.db.models import Base, ProjectQuotaRow, ProjectRow
from ptw.infra.db.repositories.base import SqlRepository

projects = Base.metadata.tables[ProjectRow.__tablename__]


mapping = EntityMapping(Project, projects)
_project = mapping.entity_of
quotas = Base.metadata.tables[ProjectQuotaRow.__tablename__]
quota_mapping = EntityMapping(ProjectQuota, quotas)


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

    async def get_quota(self, project_id: str) -> ProjectQuota | None:
        row = (await self.session.execute(select(quotas).where(quotas.c.project_id == project_id))).first()
        return quota_mapping.entity_of(row) if row else None

    async def set_quota(self, quota: ProjectQuota) -> None:
        await self.session.execute(quotas.delete().where(quotas.c.project_id == quota.project_id))
        await self.session.execute(quotas.insert().values(quota_mapping.values(quota)))

    async def lock(self, project_id: str) -> None:
        if self.postgres:
            await self.session.execute(
                select(projects.c.id).where(projects.c.id == project_id).with_for_update()
            )
        else:  # SQLite has no row locks: a write that changes nothing takes the database's write lock
            touch = update(projects).where(projects.c.id == project_id).values(name=projects.c.name)
            await self.session.execute(touch)
