"""Registering and finding workflows, built-ins included."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ptw.domain.artifacts import Retention
from ptw.domain.clock import new_id, utcnow
from ptw.domain.errors import BadInput, Conflict, NotFound
from ptw.domain.events import EXECUTORS_TOPIC, EntrypointAnswered, EntrypointProbed, probe_topic
from ptw.domain.ports import (
    EventBus,
    ExecutorRegistry,
    Page,
    PageRequest,
    ParamsValidator,
    UnitOfWorkFactory,
)
from ptw.domain.tenancy import Actor, Role
from ptw.domain.workflows import Workflow, check_entrypoint, check_resources, check_workflow_name


@dataclass(frozen=True)
class WorkflowSpec:
    """What ``registerWorkflow`` is given."""

    name: str
    entrypoint: str
    params_schema: dict[str, Any] | None = None
    defaults: dict[str, Any] | None = None
    gpus: int | None = None
    timeout_seconds: int | None = None
    processes_per_node: int | None = None
    nodes: int | None = None
    memory_mb: int | None = None
    pool: str | None = None


@dataclass
class EntrypointCheck:
    """Asks the executors that would run a workflow whether they can import its entrypoint's module.

    The executors import training code from their own environment, never the API's, so only they can
    tell. Each executor process that serves the workflow's resource class (and pool) answers for its
    slots; the check ends at the first executor that can import it, or once every live one has answered,
    or after ``wait`` seconds. With no executor alive, or none answering, nothing can be said: the
    workflow is registered, and a run of it fails at its start if the module is missing."""

    bus: EventBus
    registry: ExecutorRegistry
    wait: float = 5.0

    async def problem(self, workflow: Workflow) -> str | None:
        """Why no executor that answered can import the entrypoint; None when one can, or none said."""
        resource_class = workflow.resources.resource_class
        alive = {e.id for e in await self.registry.alive() if resource_class in e.resource_classes}
        if not alive:
            return None
        probe = new_id()
        problems: list[str] = []
        async with self.bus.subscribe([probe_topic(probe)]) as answers:
            await self.bus.publish(
                [EXECUTORS_TOPIC], EntrypointProbed(probe, workflow.entrypoint, resource_class)
            )
            try:
                async with asyncio.timeout(self.wait):
                    async for answer in answers:
                        if not isinstance(answer, EntrypointAnswered):
                            continue
                        if answer.problem is None:
                            return None
                        problems.append(answer.problem)
                        alive.difference_update(answer.executors)
                        if not alive:
                            break
            except TimeoutError:
                pass
        return "; ".join(dict.fromkeys(problems)) if problems else None


@dataclass
class WorkflowService:
    uow: UnitOfWorkFactory
    validator: ParamsValidator
    entrypoints: EntrypointCheck | None = None

    async def register(
        self, actor: Actor, project_id: str | None, spec: WorkflowSpec, retention: Retention | None = None
    ) -> Workflow:
        """``retention``: how many checkpoints its runs keep (default: ``Retention()``)."""
        project_id = actor.default_project(project_id)
        actor.require(project_id, Role.MEMBER)
        workflow = self._build(spec, project_id)
        problem = await self.entrypoints.problem(workflow) if self.entrypoints else None
        if problem is not None:
            raise BadInput(
                f"entrypoint {workflow.entrypoint!r} cannot be imported by the executors that would run it "
                f"({problem}); they import it from their own environment: install the package where "
                "`ptw serve` / `ptw worker` run, or put its directory on their PYTHONPATH",
                field="entrypoint",
            )
        async with self.uow() as uow:
            if await uow.projects.get(project_id) is None:
                raise NotFound.of("Project", project_id)
            if await uow.workflows.get_by_name(workflow.name, project_id) is not None:
                raise Conflict(f"workflow {workflow.name!r} already exists in this project", field="name")
            await uow.workflows.add(workflow)
            if retention is not None:
                await uow.retention.put(workflow.id, retention)
            await uow.commit()
        return workflow

    async def get(self, actor: Actor, workflow_id: str) -> Workflow:
        async with self.uow() as uow:
            workflow = await uow.workflows.get(workflow_id)
        if workflow is None or not actor.can_see(workflow.project_id):
            raise NotFound.of("Workflow", workflow_id)
        return workflow

    async def get_by_name(self, actor: Actor, name: str, project_id: str | None = None) -> Workflow:
        """A project's own workflow shadows a built-in of the same name."""
        projects = [project_id] if project_id else actor.project_ids
        if project_id:
            actor.require(project_id, Role.VIEWER)
        async with self.uow() as uow:
            for pid in projects:
                found = await uow.workflows.get_by_name(name, pid)
                if found is not None:
                    return found
            builtin = await uow.workflows.get_by_name(name, None)
        if builtin is None:
            raise NotFound.of("Workflow", name)
        return builtin

    async def list_workflows(self, actor: Actor, project_id: str | None, page: PageRequest) -> Page[Workflow]:
        if project_id is not None:
            actor.require(project_id, Role.VIEWER)
        projects = [project_id] if project_id else actor.project_ids
        async with self.uow() as uow:
            return await uow.workflows.find(projects, page)

    async def get_many(self, actor: Actor, workflow_ids: Sequence[str]) -> list[Workflow | None]:
        """In the order asked, ``None`` for what is missing or not visible (for DataLoaders)."""
        async with self.uow() as uow:
            found = {w.id: w for w in await uow.workflows.get_many(workflow_ids)}
        return [
            w if w is not None and actor.can_see(w.project_id) else None for w in map(found.get, workflow_ids)
        ]

    async def install_builtins(self, builtins: Sequence[WorkflowSpec]) -> list[Workflow]:
        """Create or refresh the built-in workflows (project-less); called at start-up. Processes that
        start together (several workers, a rolling deploy) race to insert them: the loser of that race
        finds them present on its second pass and refreshes them instead."""
        try:
            return await self._install_builtins(builtins)
        except Conflict:
            return await self._install_builtins(builtins)

    async def _install_builtins(self, builtins: Sequence[WorkflowSpec]) -> list[Workflow]:
        installed = []
        async with self.uow() as uow:
            for spec in builtins:
                fresh = self._build(spec, None)
                existing = await uow.workflows.get_by_name(fresh.name, None)
                if existing is None:
                    await uow.workflows.add(fresh)
                    installed.append(fresh)
                else:
                    updated = replace(fresh, id=existing.id, created_at=existing.created_at)
                    await uow.workflows.update(updated)
                    installed.append(updated)
            await uow.commit()
        return installed

    def _build(self, spec: WorkflowSpec, project_id: str | None) -> Workflow:
        schema = spec.params_schema or {"type": "object"}
        if not isinstance(schema, dict):
            raise BadInput("paramsSchema must be a JSON object", field="paramsSchema")
        problems = self.validator.check_schema(schema)
        if problems:
            raise BadInput(f"paramsSchema is not a valid JSON schema: {problems[0]}", field="paramsSchema")
        defaults = spec.defaults or {}
        if not isinstance(defaults, dict):
            raise BadInput("defaults must be a JSON object", field="defaults")
        errors = self.validator.errors(schema, defaults)
        if errors:
            path, message = errors[0]
            raise BadInput(
                f"defaults do not match paramsSchema at {path}: {message}", field="defaults", path=path
            )
        return Workflow(
            id=new_id(),
            name=check_workflow_name(spec.name),
            entrypoint=check_entrypoint(spec.entrypoint),
            project_id=project_id,
            params_schema=schema,
            defaults=defaults,
            resources=check_resources(
                spec.gpus,
                spec.timeout_seconds,
                spec.processes_per_node,
                spec.nodes,
                spec.memory_mb,
                spec.pool,
            ),
            created_at=utcnow(),
        )
