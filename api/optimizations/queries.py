"""Queries of optimizations."""

from __future__ import annotations

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_id, decode_optional_id
from ptw.api.optimizations.types import Optimization, OptimizationFilter
from ptw.api.pagination import Connection, connection, page_request


@strawberry.type
class OptimizationQueries:
    @strawberry.field
    async def optimizations(
        self,
        info: Info,
        filter: OptimizationFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Optimization]:
        project_id = decode_optional_id(filter.project_id if filter else None, "Project")
        page = await info.context.services.optimizations.list_optimizations(
            info.context.actor, project_id, page_request(first, after)
        )
        return connection(page, Optimization.from_domain, lambda optimization: optimization.id)

    @strawberry.field
    async def optimization(self, info: Info, id: strawberry.ID) -> Optimization | None:
        optimization = await info.context.services.optimizations.get(
            info.context.actor, decode_id(id, "Optimization")
        )
        return Optimization.from_domain(optimization)
