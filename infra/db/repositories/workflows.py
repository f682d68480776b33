"""Workflows, the built-ins (no project) included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, or_, select, update

from ptw.domain.ports import Page, PageRequest
from ptw.domain.workflows import Resources, Workflow
from ptw.infra.db.models import Base, WorkflowRow
from ptw.infra.db.repositories.base import SqlRepository

workflows = Base.metadata.tables[WorkflowRow.__tablename__]


def _workflow(row: Row[Any]) -> Workflow:
    return Workflow(
        id=row.id,
        name=row.name,
        entrypoint=row.entrypoint,
        project_id=row.project_id,
        params_schema=row.params_schema,
        defaults=row.defaults,
        resources=Resources(gpus=row.gpus, timeout_seconds=row.timeout_seconds),
        created_at=row.created_at,
    )


def _values(workflow: Workflow) -> dict[str, Any]:
    return {
        "id": workflow.id,
        "project_id": workflow.project_id,
        "name": workflow.name,
        "entrypoint": workflow.entrypoint,
        "params_schema": workflow.params_schema,
        "defaults": workflow.defaults,
        "gpus": workflow.resources.gpus,
        "timeout_seconds": workflow.resources.timeout_seconds,
        "created_at": workflow.created_at,
    }


class SqlWorkflowRepository(SqlRepository):
    async def add(self, workflow: Workflow) -> None:
        await self.insert(workflows, _values(workflow), f"workflow {workflow.name!r}")

    async def update(self, workflow: Workflow) -> None:
        values = _values(workflow)
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
