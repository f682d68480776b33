"""The per-request (or per-WebSocket-connection) context: services, the authenticated actor, DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from ptw.api.metrics.loaders import latest_metrics_loader
from ptw.api.projects.loaders import project_loader
from ptw.api.runs.loaders import attempts_loader, run_loader
from ptw.api.workflows.loaders import workflow_loader
from ptw.domain.errors import DomainError, Unauthenticated
from ptw.domain.metrics import MetricPoint
from ptw.domain.run_story import RunAttempt
from ptw.domain.runs import Run
from ptw.domain.tenancy import Actor, Project
from ptw.domain.workflows import Workflow

if TYPE_CHECKING:
    from ptw.api.telemetry import Telemetry
    from ptw.infra.bootstrap import Services


@dataclass
class Loaders:
    workflow: DataLoader[str, Workflow | None]
    run: DataLoader[str, Run | None]
    project: DataLoader[str, Project | None]
    latest_metrics: DataLoader[str, list[MetricPoint]]
    attempts: DataLoader[str, list[RunAttempt]]

    @classmethod
    def create(cls, services: Services, actor: Actor, *, cache: bool) -> Loaders:
        return cls(
            workflow=workflow_loader(services.workflows, actor, cache=cache),
            run=run_loader(services.runs, actor, cache=cache),
            project=project_loader(services.access, actor, cache=cache),
            latest_metrics=latest_metrics_loader(services.metrics, cache=cache),
            attempts=attempts_loader(services.runs, actor, cache=cache),
        )


@dataclass
class Context:
    services: Services
    telemetry: Telemetry
    request: Request | WebSocket
    response: Response | WebSocket | None = None
    # Set by strawberry from the WebSocket ``connection_init`` payload.
    connection_params: dict[str, Any] | None = None
    authenticated: Actor | None = None
    auth_error: DomainError | None = None
    # A WebSocket connection lives for hours: its loaders batch but never serve stale cached values.
    cache_loads: bool = True
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def actor(self) -> Actor:
        if self.authenticated is None:
            raise self.auth_error or Unauthenticated("an API key is required")
        return self.authenticated

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders.create(self.services, self.actor, cache=self.cache_loads)
        return self._loaders


Info: TypeAlias = strawberry.Info[Context, None]
