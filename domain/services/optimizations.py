"""Optimizations: reading them is supported; starting them arrives with the optimization work."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import BadInput, NotFound
from domain.optimizations import Optimization, OptimizationResult
from domain.ports import Page, PageRequest, UnitOfWorkFactory
from domain.tenancy import Actor, Role


@dataclass
class OptimizationService:
    uow: UnitOfWorkFactory

    async def get(self, actor: Actor, optimization_id: str) -> Optimization:
        async with self.uow() as uow:
            optimization = await uow.optimizations.get(optimization_id)
        if optimization is None or not actor.can_see(optimization.project_id):
            raise NotFound.of("Optimization", optimization_id)
        return optimization

    async def list_optimizations(
        self, actor: Actor, project_id: str | None, page: PageRequest
    ) -> Page[Optimization]:
        if project_id is not None:
            actor.require(project_id, Role.VIEWER)
        projects = [project_id] if project_id else actor.project_ids
        async with self.uow() as uow:
            return await uow.optimizations.find(projects, page)

    async def results(
        self, actor: Actor, optimization_id: str, page: PageRequest
    ) -> Page[OptimizationResult]:
        await self.get(actor, optimization_id)
        async with self.uow() as uow:
            return await uow.optimizations.results(optimization_id, page)

    async def start(self, actor: Actor, project_id: str | None) -> Optimization:
        actor.require(actor.default_project(project_id), Role.MEMBER)
        raise BadInput("optimizations are not available yet in this version", reason="NOT_IMPLEMENTED")

    async def cancel(self, actor: Actor, optimization_id: str) -> Optimization:
        await self.get(actor, optimization_id)
        raise BadInput("optimizations are not available yet in this version", reason="NOT_IMPLEMENTED")
