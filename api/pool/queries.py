"""Queries of the executor pool."""

from __future__ import annotations

import strawberry

from ptw.api.context import Info
from ptw.api.pool.types import ExecutorPool


@strawberry.type
class PoolQueries:
    @strawberry.field(
        description="Workers, busy ones, queue depth and how many workers are wanted (admin keys only)."
    )
    async def executor_pool(self, info: Info) -> ExecutorPool:
        return ExecutorPool.from_domain(await info.context.services.pool.state_for(info.context.actor))
