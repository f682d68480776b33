"""The ASGI app factory: ``/graphql`` (HTTP, WebSocket, GraphiQL), ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ptw.api.ingest.routes import ingest_routes
from ptw.api.input_limits import InputLimits
from ptw.api.runs.downloads import artifact_routes
from ptw.api.schema import build_schema
from ptw.api.telemetry import HttpMetrics, Telemetry
from ptw.api.ui.routes import ui_routes
from ptw.api.view import GraphQLEndpoint
from ptw.api.ws_send_limit import WebSocketSendLimit

if TYPE_CHECKING:
    from ptw.infra.bootstrap import Services

Hook = Callable[[], Awaitable[object]]
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def create_app(
    services: Services, *, on_startup: Sequence[Hook] = (), on_shutdown: Sequence[Hook] = ()
) -> Starlette:
    """The API over ``services``; the hooks run, in order, when the server starts and stops."""
    settings = services.settings
    telemetry = Telemetry()
    schema = build_schema(
        introspection=settings.introspection_enabled,
        suggestions=settings.field_suggestions_enabled,
        max_cost=settings.max_query_cost,
        inputs=InputLimits(max_depth=settings.max_input_depth, max_list=settings.max_input_list),
    )
    endpoint = GraphQLEndpoint(
        schema,
        services,
        telemetry,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout),
        max_subscriptions_per_connection=settings.ws_max_subscriptions,
        keep_alive=True,
        keep_alive_interval=settings.ws_keepalive,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks = await services.ready()
        ready = all(checks.values())
        # Each check at the top level: {"status": "ok", "database": true, ...}
        return JSONResponse({"status": "ok" if ready else "unavailable", **checks}, 200 if ready else 503)

    async def metrics(request: Request) -> Response:
        if not metrics_allowed(request, settings.metrics_token):
            return JSONResponse({"error": "/metrics needs PTW_METRICS_TOKEN or a loopback client"}, 403)
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
            *ingest_routes(services, endpoint.authenticate),
            *artifact_routes(services),
            *ui_routes(),
        ],
        middleware=[
            Middleware(HttpMetrics, telemetry=telemetry),
            Middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes),
            Middleware(WebSocketMessageLimit, max_bytes=settings.ws_max_message_bytes),
            Middleware(WebSocketSendLimit, seconds=settings.ws_send_timeout),
        ],
        lifespan=lifespan,
    )


def metrics_allowed(request: Request, token: SecretStr | None) -> bool:
    """``/metrics`` tells every project's queue depth, operation counts and executors: with a token set
    it asks for that token, else it answers only a scraper on the same host."""
    if token is not None:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode())
    host = request.client.host if request.client else ""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


class RequestSizeLimit:
    """Refuses HTTP bodies larger than ``max_bytes`` with 413: at once when the declared length says so,
    else (a chunked body, which declares none) as soon as the bytes read pass the limit.

    A body within the limit is passed on as it is (a declared length is enforced by the server; a
    chunked body is read here first, at most ``max_bytes`` of it, and handed on whole). A refused body
    is read on and thrown away, up to ``DRAIN_BYTES`` and ``DRAIN_SECONDS``, before the answer: an
    HTTP/1.1 client reads no answer until it has sent its body, so closing on it unread would reach it
    as a reset connection instead of a 413."""

    DRAIN_BYTES = 64 * 1024 * 1024
    DRAIN_SECONDS = 10.0

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) <= self.max_bytes:
                await self.app(scope, receive, send)
            else:
                await self.refuse(scope, receive, send, read=0)
            return
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            await self.app(scope, receive, send)  # no body at all (a GET)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self.refuse(scope, receive, send, read=len(body), more=message.get("more_body", False))
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def refuse(
        self, scope: Scope, receive: Receive, send: Send, *, read: int, more: bool = True
    ) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.DRAIN_SECONDS):
                while more and read < self.DRAIN_BYTES:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away
                    read += len(message.get("body", b""))
                    more = message.get("more_body", False)
        limit = f"request body larger than {self.max_bytes} bytes; split it (the SDK batches metrics itself)"
        # Closed after the answer: what is left of a body too large to drain is never read.
        response = JSONResponse({"error": limit}, 413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read already, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class WebSocketMessageLimit:
    """Closes a WebSocket connection (1009, 'message too big') that sends a message over ``max_bytes``:
    a subscribe message is a document and a few variables, never megabytes."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def limited() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                text, data = message.get("text"), message.get("bytes")
                size = len(text.encode()) if text is not None else len(data or b"")
                if size > self.max_bytes:
                    await send({"type": "websocket.close", "code": 1009, "reason": "message too big"})
                    return {"type": "websocket.disconnect", "code": 1009}
            return message

        await self.app(scope, limited, send)
