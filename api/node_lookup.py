"""``node(id:)``: any object by its global ID; missing and not-visible objects both answer null."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_any_id
from ptw.api.node import Node
from ptw.api.optimizations.types import Optimization, OptimizationResult
from ptw.api.projects.types import ApiKey, Project
from ptw.api.runs.artifacts import Artifact, base_url
from ptw.api.runs.types import Run
from ptw.api.workflows.types import Workflow
from ptw.domain.errors import NotFound


async def _run(info: Info, ident: str) -> Node:
    return Run.from_domain(await info.context.services.runs.get_run(info.context.actor, ident))


async def _workflow(info: Info, ident: str) -> Node:
    return Workflow.from_domain(await info.context.services.workflows.get(info.context.actor, ident))


async def _project(info: Info, ident: str) -> Node:
    actor = info.context.actor
    project = await info.context.services.access.get_project(actor, ident)
    return Project.from_domain(project, actor.roles[project.id])


async def _optimization(info: Info, ident: str) -> Node:
    optimization = await info.context.services.optimizations.get(info.context.actor, ident)
    return Optimization.from_domain(optimization)


async def _api_key(info: Info, ident: str) -> Node:
    return ApiKey.from_domain(await info.context.services.access.get_api_key(info.context.actor, ident))


async def _optimization_result(info: Info, ident: str) -> Node:
    result = await info.context.services.optimizations.get_result(info.context.actor, ident)
    return OptimizationResult.from_domain(result)


async def _artifact(info: Info, ident: str) -> Node:
    artifact = await info.context.services.artifacts.get(info.context.actor, ident)
    return Artifact.from_domain(artifact, base_url(info))


RESOLVERS: dict[str, Callable[[Info, str], Awaitable[Node]]] = {
    "Run": _run,
    "Workflow": _workflow,
    "Project": _project,
    "Optimization": _optimization,
    "ApiKey": _api_key,
    "OptimizationResult": _optimization_result,
    "Artifact": _artifact,
}


@strawberry.type
class NodeQueries:
    @strawberry.field(
        description="Any object by its global ID; null when missing or not visible to the caller."
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, ident = decode_any_id(id)
        resolve = RESOLVERS.get(type_name)
        if resolve is None:
            return None
        try:
            return await resolve(info, ident)
        except NotFound:
            return None
