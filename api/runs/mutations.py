"""Mutations of runs: start one (idempotently), cancel one, rename, retag or annotate one."""

from __future__ import annotations

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_id, decode_optional_id
from ptw.api.run_ids import run_id_of
from ptw.api.runs.types import Run, StartRunInput, UpdateRunInput


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
            name=input.name,
            tags=input.tags or (),
        )
        return Run.from_domain(run)

    @strawberry.mutation(description="A queued run is cancelled at once; a started one goes to CANCELLING.")
    async def cancel_run(self, info: Info, id: strawberry.ID) -> Run:
        run = await info.context.services.runs.cancel_run(info.context.actor, await run_id_of(info, id))
        return Run.from_domain(run)

    @strawberry.mutation(description="Rename, retag or annotate a run (a member's right, in any state).")
    async def update_run(self, info: Info, id: strawberry.ID, input: UpdateRunInput) -> Run:
        run = await info.context.services.runs.update_run(
            info.context.actor,
            await run_id_of(info, id),
            name=input.name,
            tags=input.tags,
            notes=input.notes,
        )
        return Run.from_domain(run)
