"""Mutations of runs: start one (idempotently), cancel one."""

from __future__ import annotations

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_id, decode_optional_id
from ptw.api.runs.types import Run, StartRunInput


@strawberry.type
class RunMutations:
    @strawberry.mutation(description="Queue a run of a workflow; params are checked against its schema.")
    async def start_run(self, info: Info, input: StartRunInput) -> Run:
        run = await info.context.services.runs.start_run(
            info.context.actor,
            decode_id(input.workflow_id, "Workflow"),
            project_id=decode_optional_id(input.project_id, "Project"),
            params=input.params,
            idempotency_key=input.idempotency_key,
        )
        return Run.from_domain(run)

    @strawberry.mutation(description="A queued run is cancelled at once; a started one goes to CANCELLING.")
    async def cancel_run(self, info: Info, id: strawberry.ID) -> Run:
        run = await info.context.services.runs.cancel_run(info.context.actor, decode_id(id, "Run"))
        return Run.from_domain(run)
