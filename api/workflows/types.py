"""GraphQL types of workflows: registered training code and its parameters."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from ptw.api.context import Info
from ptw.api.direction import Direction
from ptw.api.ids import encode_id
from ptw.api.node import Node
from ptw.api.pagination import Connection, connection, page_request
from ptw.domain import artifacts, workflows
from ptw.domain.errors import NotFound

if TYPE_CHECKING:
    from ptw.api.projects.types import Project
    from ptw.api.runs.types import Run


@strawberry.type(description="How many checkpoints each run of a workflow keeps; the others are deleted.")
class CheckpointRetention:
    keep_last: int = strawberry.field(description="The newest N are kept (at least 1).")
    best_by: str | None = strawberry.field(
        description="The best checkpoint by this metric is kept too; null: none (a trial: its objective)."
    )
    direction: Direction = strawberry.field(description="Which way bestBy is better.")

    @classmethod
    def from_domain(cls, retention: artifacts.Retention) -> CheckpointRetention:
        return cls(keep_last=retention.keep_last, best_by=retention.best_by, direction=retention.direction)


@strawberry.type(
    description="PyTorch training code, `package.module:function`, with a JSON schema for params."
)
class Workflow(Node):
    name: str
    entrypoint: str
    params_schema: dict[str, Any] = strawberry.field(graphql_type=JSON)
    defaults: dict[str, Any] = strawberry.field(graphql_type=JSON)
    builtin: bool = strawberry.field(description="Built-in workflows are visible to every project.")
    gpus: int
    timeout_seconds: int | None
    processes_per_node: int
    nodes: int
    memory_mb: int | None
    pool: str | None
    created_at: datetime | None
    model: strawberry.Private[workflows.Workflow]

    @classmethod
    def from_domain(cls, workflow: workflows.Workflow) -> Workflow:
        resources = workflow.resources
        return cls.of(
            workflow,
            gpus=resources.gpus,
            timeout_seconds=resources.timeout_seconds,
            processes_per_node=resources.processes,
            nodes=resources.nodes,
            memory_mb=resources.memory_mb,
            pool=resources.pool,
        )

    @classmethod
    async def load(cls, info: Info, workflow_id: str) -> Workflow:
        """The workflow of a run or an optimization, through the request's loader."""
        workflow = await info.context.loaders.workflow.load(workflow_id)
        if workflow is None:
            raise NotFound.of("Workflow", encode_id("Workflow", workflow_id))
        return cls.from_domain(workflow)

    @strawberry.field(description="The checkpoint retention its runs follow (default: the newest 3).")
    async def checkpoint_retention(self, info: Info) -> CheckpointRetention:
        return CheckpointRetention.from_domain(await info.context.services.artifacts.retention(self.model.id))

    @strawberry.field(description="The project that registered it; null for a built-in.")
    async def project(
        self, info: Info
    ) -> Annotated[Project, strawberry.lazy("ptw.api.projects.types")] | None:
        from ptw.api.projects.types import Project

        if self.model.project_id is None:
            return None
        project = await info.context.loaders.project.load(self.model.project_id)
        if project is None:
            return None
        return Project.from_domain(project, info.context.actor.roles[project.id])

    @strawberry.field(description="Runs of this workflow in the caller's projects, newest first.")
    async def runs(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[Run, strawberry.lazy("ptw.api.runs.types")]]:
        from ptw.api.runs.types import Run

        page = await info.context.services.runs.list_runs(
            info.context.actor, page_request(first, after), workflow_id=self.model.id
        )
        return connection(page, Run.from_domain, lambda run: run.id)
