"""Queries of workflows: list them, or find one by global id or by name."""

from __future__ import annotations

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_id, decode_optional_id
from ptw.api.pagination import Connection, connection, page_request
from ptw.api.workflows.types import Workflow
from ptw.domain.errors import BadInput


@strawberry.type
class WorkflowQueries:
    @strawberry.field(description="Built-in workflows and those of the caller's projects (or of one).")
    async def workflows(
        self,
        info: Info,
        project_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Workflow]:
        page = await info.context.services.workflows.list_workflows(
            info.context.actor, decode_optional_id(project_id, "Project"), page_request(first, after)
        )
        return connection(page, Workflow.from_domain, lambda workflow: workflow.id)

    @strawberry.field(
        description="A workflow by global id, or by name (a project's own shadows a built-in of that name)."
    )
    async def workflow(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        name: str | None = None,
        project_id: strawberry.ID | None = None,
    ) -> Workflow | None:
        service, actor = info.context.services.workflows, info.context.actor
        if id is not None:
            return Workflow.from_domain(await service.get(actor, decode_id(id, "Workflow")))
        if name is not None:
            project = decode_optional_id(project_id, "Project")
            return Workflow.from_domain(await service.get_by_name(actor, name, project))
        raise BadInput("give the workflow's id or its name", field="id")
