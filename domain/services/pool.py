"""The executor pool as clients see it: workers, busy ones, queue depth and the scaling decision."""

from __future__ import annotations

from dataclasses import dataclass

from ptw.domain.errors import Forbidden
from ptw.domain.executors import PoolState, desired_workers
from ptw.domain.ports import ExecutorRegistry, JobQueue
from ptw.domain.tenancy import Actor, Role


@dataclass
class PoolService:
    registry: ExecutorRegistry
    queue: JobQueue
    min_workers: int = 0
    max_workers: int = 1

    async def state_for(self, actor: Actor) -> PoolState:
        """The fleet-wide pool, for admins only: its executors, devices and every project's queue depth
        are the operator's business, not a viewer's (docs/security.md)."""
        if Role.ADMIN not in actor.roles.values():
            raise Forbidden("the executor pool is shown to admin keys only")
        return await self.state()

    async def state(self) -> PoolState:
        executors = await self.registry.alive()
        by_class = await self.queue.depth()
        autoscalers = await self.registry.autoscalers()
        depth = sum(by_class.values())
        busy = sum(1 for e in executors if e.busy)
        if autoscalers:
            # The autoscalers decide: what they want is what the pool is heading for.
            desired = sum(a.desired for a in autoscalers)
        else:
            desired = desired_workers(depth, busy, self.min_workers, max(self.max_workers, len(executors)))
        return PoolState(
            workers=len(executors),
            busy=busy,
            queue_depth=depth,
            desired_workers=desired,
            queue_by_class=by_class,
            executors=tuple(executors),
            autoscalers=tuple(autoscalers),
        )
