"""Mutations of external runs, called by the tracking client (``ptw.init``) from the user's process."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from ptw.api.context import Info
from ptw.api.ids import decode_optional_id
from ptw.api.run_ids import run_id_of
from ptw.api.runs.types import Run, RunStatus


@strawberry.input(description="An external run: tracked from any process, held by no executor.")
class StartExternalRunInput:
    project_id: strawberry.ID | None = strawberry.field(
        default=None, description="Default: the key's only project."
    )
    name: str | None = strawberry.field(default=None, description="Default: a readable name from its id.")
    params: Any = strawberry.field(default=None, graphql_type=JSON | None)
    tags: list[str] | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="Starting again with the same key answers the same run."
    )
    device: str | None = None


@strawberry.input
class FinishRunInput:
    status: RunStatus = strawberry.field(description="SUCCEEDED, FAILED or CANCELLED.")
    error: str | None = strawberry.field(default=None, description="Why it failed: the traceback's tail.")
    summary: Any = strawberry.field(default=None, graphql_type=JSON | None)


@strawberry.type
class TrackingMutations:
    @strawberry.mutation(
        description="Start an external run (RUNNING at once); keep it alive with heartbeatRun, end it "
        "with finishRun. A run whose heartbeats stop is marked FAILED by the server."
    )
    async def start_external_run(self, info: Info, input: StartExternalRunInput) -> Run:
        run = await info.context.services.tracking.start(
            info.context.actor,
            project_id=decode_optional_id(input.project_id, "Project"),
            name=input.name,
            params=input.params,
            tags=input.tags or (),
            idempotency_key=input.idempotency_key,
            device=input.device,
        )
        return Run.from_domain(run)

    @strawberry.mutation(
        description="The tracking process lives (with the summary so far); answers the run, whose "
        "status CANCELLING asks the process to stop."
    )
    async def heartbeat_run(
        self,
        info: Info,
        id: strawberry.ID,
        summary: JSON | None = None,
    ) -> Run:
        run = await info.context.services.tracking.heartbeat(
            info.context.actor, await run_id_of(info, id), summary
        )
        return Run.from_domain(run)

    @strawberry.mutation(description="End an external run as its process says; a repeated call is harmless.")
    async def finish_run(self, info: Info, id: strawberry.ID, input: FinishRunInput) -> Run:
        run = await info.context.services.tracking.finish(
            info.context.actor,
            await run_id_of(info, id),
            input.status,
            error=input.error,
            summary=input.summary,
        )
        return Run.from_domain(run)
