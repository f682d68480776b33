"""The ASGI app factory: ``/graphql`` (HTTP, WebSocket, GraphiQL), ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.schema import build_schema
from api.telemetry import HttpMetrics, Telemetry
from api.ui.routes import ui_routes
from api.view import GraphQLEndpoint

if TYPE_CHECKING:
    from infra.bootstrap import Services

Hook = Callable[[], Awaitable[object]]
# logMetrics may carry up to 100,000 points (about 10 MB of JSON); anything larger is refused unread.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def create_app(
    services: Services, *, on_startup: Sequence[Hook] = (), on_shutdown: Sequence[Hook] = ()
) -> Starlette:
    """The API over ``services``; the hooks run, in order, when the server starts and stops."""
    settings = services.settings
    telemetry = Telemetry()
    endpoint = GraphQLEndpoint(
        build_schema(introspection=settings.introspection_enabled),
        services,
        telemetry,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks = await services.ready()
        ready = all(checks.values())
        # Each check at the top level: {"status": "ok", "database": true, ...}
        return JSONResponse({"status": "ok" if ready else "unavailable", **checks}, 200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(await telemetry.scrape(services), media_type=PROMETHEUS_TEXT)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for hook in on_startup:
            await hook()
        try:
            yield
        finally:
            for hook in on_shutdown:
                await hook()

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/graphql", endpoint, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", endpoint),
            *ui_routes(),
        ],
        middleware=[
            Middleware(HttpMetrics, telemetry=telemetry),
            Middleware(RequestSizeLimit, max_bytes=MAX_REQUEST_BYTES),
        ],
        lifespan=lifespan,
    )


class RequestSizeLimit:
    """Refuses bodies declared larger than ``max_bytes`` with 413 before reading them.

    Bodies sent without a length (chunked) are not counted here; the load balancer bounds them (§9)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = dict(scope["headers"]).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self.max_bytes:
                await JSONResponse({"error": "request body too large"}, 413)(scope, receive, send)
                return
        await self.app(scope, receive, send)
