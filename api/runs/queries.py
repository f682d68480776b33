"""Queries of runs: a filtered, ordered connection, and one run by id."""

from __future__ import annotations

from typing import Annotated

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_optional_id
from ptw.api.pagination import Connection, connection, page_request
from ptw.api.run_ids import run_id_of
from ptw.api.runs.types import Run, RunFilter, RunOrder
from ptw.domain.errors import BadInput


@strawberry.type
class RunQueries:
    @strawberry.field(description="Runs of the caller's projects, newest first unless ordered otherwise.")
    async def runs(
        self,
        info: Info,
        filter: RunFilter | None = None,
        order_by: RunOrder | None = None,
        first: int | None = None,
        after: str | None = None,
        order_metric: Annotated[
            str | None,
            strawberry.argument(description="The metric that orderBy METRIC_ASC / METRIC_DESC orders by."),
        ] = None,
    ) -> Connection[Run]:
        filter = filter or RunFilter()
        by_metric = order_by in (RunOrder.METRIC_ASC, RunOrder.METRIC_DESC)
        if by_metric != (order_metric is not None):
            raise BadInput(
                "orderBy METRIC_ASC / METRIC_DESC goes with orderMetric, and only they do",
                field="orderMetric",
            )
        page = await info.context.services.runs.list_runs(
            info.context.actor,
            page_request(first, after),
            project_id=decode_optional_id(filter.project_id, "Project"),
            workflow_id=decode_optional_id(filter.workflow_id, "Workflow"),
            statuses=list(filter.status or ()),
            optimization_id=decode_optional_id(filter.optimization_id, "Optimization"),
            newest_first=order_by not in (RunOrder.CREATED_AT_ASC, RunOrder.METRIC_ASC),
            tags=filter.tags or (),
            params=filter.params,
            metrics=[m.to_domain() for m in filter.metrics or ()],
            order_metric=order_metric,
        )
        return connection(page, Run.from_domain, lambda run: run.id)

    @strawberry.field(
        description="A run by id or short id; NOT_FOUND when missing or in a project the caller cannot see."
    )
    async def run(self, info: Info, id: strawberry.ID) -> Run | None:
        run_id = await run_id_of(info, id)
        return Run.from_domain(await info.context.services.runs.get_run(info.context.actor, run_id))
