"""Subscriptions of runs: the events of one run, and every run change of a project."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_id
from ptw.api.run_ids import run_id_of
from ptw.api.runs.types import Run, RunEvent
from ptw.domain.events import RunChanged, RunLogged, project_topic, run_topic

REPLAY_PAGE = 1000


@strawberry.type
class RunSubscriptions:
    @strawberry.subscription(
        description="The run's status now and its stored output lines, then its status changes and new "
        "output lines as they come; ends when the run ends."
    )
    async def run_events(self, info: Info, run_id: strawberry.ID) -> AsyncGenerator[RunEvent, None]:
        services, actor = info.context.services, info.context.actor
        ident = await run_id_of(info, run_id)
        await services.runs.get_run(actor, ident)  # NOT_FOUND before subscribing to anything
        with info.context.telemetry.subscription("runEvents"):
            async with services.bus.subscribe([run_topic(ident)]) as live:
                run = await services.runs.get_run(actor, ident)
                yield RunEvent.status_of(run)
                replayed = 0  # lines stored before now: live events of them are not sent again
                while True:
                    lines = await services.runs.logs(actor, ident, replayed, REPLAY_PAGE)
                    for line in lines:
                        yield RunEvent.stored_log_of(line, run.project_id)
                    replayed = lines[-1].seq if lines else replayed
                    if len(lines) < REPLAY_PAGE:
                        break
                if run.status.terminal:
                    return
                status = run.status
                async for event in live:
                    if isinstance(event, RunLogged):
                        if event.seq is None or event.seq > replayed:
                            yield RunEvent.log_of(event)
                    elif isinstance(event, RunChanged) and event.run.status is not status:
                        status = event.run.status
                        yield RunEvent.status_of(event.run)
                        if status.terminal:
                            return

    @strawberry.subscription(description="Every run of the project, each time it is created or changed.")
    async def project_runs(self, info: Info, project_id: strawberry.ID) -> AsyncGenerator[Run, None]:
        services, actor = info.context.services, info.context.actor
        project = await services.access.get_project(actor, decode_id(project_id, "Project"))
        with info.context.telemetry.subscription("projectRuns"):
            async with services.bus.subscribe([project_topic(project.id)]) as live:
                async for event in live:
                    if isinstance(event, RunChanged):
                        yield Run.from_domain(event.run)
