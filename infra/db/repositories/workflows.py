"""Workflows, the built-ins (no project) included."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, or_, select, update

from ptw.domain.ports import Page, PageRequest
from ptw.domain.workflows import Workflow
from ptw.infra.db.mapping import EntityMapping
from ptw.infra.db.models import Base, WorkflowRow
from ptw.infra.db.repositories.base import SqlRepository

workflows = Base.metadata.tables[WorkflowRow.__tablename__]


mapping = EntityMapping(Workflow, workflows, spread=("resources",))
_workflow = mapping.entity_of


class SqlWorkflowRepository(SqlRepository):
    async def add(self, workflow: Workflow) -> None:
        await self.insert(workflows, mapping.values(workflow), f"workflow {workflow.name!r}")

    async def update(self, workflow: Workflow) -> None:
        values = mapping.values(workflow)
        del values["id"]
        await self.session.execute(update(workflows).where(workflows.c.id == workflow.id).values(values))

    async def get(self, workflow_id: str) -> Workflow | None:
        row = (await self.session.execute(select(workflows).where(workflows.c.id == workflow_id))).first()
        return _workflow(row) if row else None

    async def get_many(self, workflow_ids: Sequence[str]) -> list[Workflow]:
        if not workflow_ids:
            return []
        stmt = select(workflows).where(workflows.c.id.in_(workflow_ids))
        return [_workflow(r) for r in (await self.session.execute(stmt)).all()]

    async def get_by_name(self, name: str, project_id: str | None) -> Workflow | None:
        owner = (
            workflows.c.project_id.is_(None) if project_id is None else workflows.c.project_id == project_id
        )
        row = (await self.session.execute(select(workflows).where(workflows.c.name == name, owner))).first()
        return _workflow(row) if row else None

    async def find(self, project_ids: Sequence[str], page: PageRequest) -> Page[Workflow]:
        """Built-ins and the given projects' workflows, ordered by name then id."""
        visible: ColumnElement[bool] = workflows.c.project_id.is_(None)
        if project_ids:
            visible = or_(visible, workflows.c.project_id.in_(project_ids))
        stmt = select(workflows).where(visible)
        return await self.page(stmt, workflows, ("name", "id"), page, _workflow)
