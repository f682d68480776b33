"""Mutations of workflows: ``registerWorkflow``."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from ptw.api.context import Info
from ptw.api.direction import Direction
from ptw.api.ids import decode_optional_id
from ptw.api.workflows.types import Workflow
from ptw.domain.artifacts import Retention, retention_of
from ptw.domain.services.workflows import WorkflowSpec


@strawberry.input(description="How many checkpoints each run keeps; the others are deleted with their files.")
class CheckpointRetentionInput:
    keep_last: int | None = strawberry.field(
        default=None, description="The newest N (default 3, at least 1)."
    )
    best_by: str | None = strawberry.field(
        default=None, description="Also keep the best checkpoint by this metric (a trial: its objective)."
    )
    direction: Direction | None = strawberry.field(default=None, description="For bestBy; default MINIMIZE.")

    def to_domain(self) -> Retention:
        return retention_of(self.keep_last, self.best_by, self.direction)


@strawberry.input
class RegisterWorkflowInput:
    project_id: strawberry.ID | None = None
    name: str
    entrypoint: str = strawberry.field(description="`package.module:function`, installed on the executors.")
    params_schema: Any = strawberry.field(default=None, graphql_type=JSON | None)
    defaults: Any = strawberry.field(default=None, graphql_type=JSON | None)
    gpus: int | None = strawberry.field(default=None, description="GPUs per node.")
    timeout_seconds: int | None = None
    processes_per_node: int | None = strawberry.field(
        default=None,
        description="Processes per node, started by torch's elastic launcher (default: one per GPU, or 1).",
    )
    nodes: int | None = strawberry.field(
        default=None, description="Executors the run takes at once (gang placement: all or none)."
    )
    memory_mb: int | None = strawberry.field(
        default=None,
        description="Memory limit of the run's processes on a node; a run over it ends FAILED.",
    )
    pool: str | None = strawberry.field(
        default=None, description="The executor pool that runs it (`ptw worker --pool NAME`)."
    )
    checkpoint_retention: CheckpointRetentionInput | None = None

    def to_spec(self) -> WorkflowSpec:
        return WorkflowSpec(
            name=self.name,
            entrypoint=self.entrypoint,
            params_schema=self.params_schema,
            defaults=self.defaults,
            gpus=self.gpus,
            timeout_seconds=self.timeout_seconds,
            processes_per_node=self.processes_per_node,
            nodes=self.nodes,
            memory_mb=self.memory_mb,
            pool=self.pool,
        )


@strawberry.type
class WorkflowMutations:
    @strawberry.mutation(description="Register training code of a project under a name.")
    async def register_workflow(self, info: Info, input: RegisterWorkflowInput) -> Workflow:
        retention = input.checkpoint_retention.to_domain() if input.checkpoint_retention else None
        workflow = await info.context.services.workflows.register(
            info.context.actor, decode_optional_id(input.project_id, "Project"), input.to_spec(), retention
        )
        return Workflow.from_domain(workflow)
