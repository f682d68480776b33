"""The GraphQL endpoint: authenticates each HTTP request and each WebSocket connection, builds the context.

HTTP: ``Authorization: Bearer <key>``. A request without a valid key is answered **401** with a
GraphQL body ``{"data": null, "errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}`` and nothing
is executed (the GraphiQL page itself loads without a key). WebSocket: the key is in the
``connection_init`` payload as ``{"authorization": "Bearer <key>"}``; a missing or bad one closes the
connection with 4403 (graphql-transport-ws) or answers ``connection_error`` (legacy graphql-ws).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types.unset import UNSET, UnsetType

from ptw.api.auth_guard import AuthenticationGuard
from ptw.api.context import Context
from ptw.api.errors import domain_error
from ptw.api.input_limits import decode_body
from ptw.api.json_encoding import encode_json, encode_json_bytes
from ptw.api.telemetry import Telemetry
from ptw.api.ui.graphiql import graphiql_page
from ptw.api.ws_messages import LegacyWsHandler, TransportWsHandler
from ptw.domain.errors import DomainError, RateLimited, Unauthenticated
from ptw.domain.events import Event, key_topic
from ptw.domain.tenancy import Actor

if TYPE_CHECKING:
    from cross_web import AsyncHTTPRequestAdapter
    from strawberry.http import GraphQLRequestData
    from strawberry.schema import BaseSchema

    from ptw.infra.bootstrap import Services

log = logging.getLogger("ptw.api")

BEARER = "bearer "
# A revoked key's WebSocket connections end at once on the ``KeyRevoked`` event; this re-check is the
# fallback for a lost event (pub/sub is at most once) and for a key that lost a role. Each check is one
# authentication (one SQL round trip).
KEY_RECHECK_SECONDS = 30.0


def bearer_secret(value: object) -> str | None:
    """The key of an ``Authorization`` value; None when absent or not a Bearer one."""
    if not isinstance(value, str) or not value.lower().startswith(BEARER):
        return None
    return value[len(BEARER) :].strip() or None


class Unavailable(DomainError):
    """Authentication could not be checked (the database dropped the connection): try again."""

    code = "SERVICE_UNAVAILABLE"


BODY_SLICE = 1 << 20


async def _slices(body: bytes) -> AsyncIterator[memoryview]:
    whole = memoryview(body)
    for start in range(0, len(body), BODY_SLICE):
        yield whole[start : start + BODY_SLICE]


class GraphQLEndpoint(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWsHandler
    graphql_ws_handler_class = LegacyWsHandler

    def __init__(self, schema: BaseSchema, services: Services, telemetry: Telemetry, **options: Any) -> None:
        super().__init__(schema, **options)
        self.services = services
        self.telemetry = telemetry
        self.guard = AuthenticationGuard(services.auth_failure_limiter)
        # The revocation watch of each open WebSocket connection, by id of its WebSocket.
        self._watches: dict[int, asyncio.Task[None]] = {}

    def encode_json(self, data: object) -> str:
        return encode_json(data)  # series columns arrive as numpy arrays (api/json_encoding.py)

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        # strawberry's, with the body as orjson's bytes: a whole million-point series is ~45 MB of JSON,
        # which strawberry would also hold as a str and encode again. A large body goes in slices, so the
        # socket's buffer (asyncio copies what the socket does not take at once) holds a slice, not a copy.
        body = encode_json_bytes(response_data)
        response: Response
        if len(body) > BODY_SLICE:
            response = StreamingResponse(
                _slices(body), media_type="application/json", headers={"content-length": str(len(body))}
            )
        else:
            response = Response(body, media_type="application/json")
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        context = Context(
            services=self.services, telemetry=self.telemetry, request=request, response=response
        )
        if isinstance(request, WebSocket):
            context.cache_loads = False  # authenticated later, in on_ws_connect
            return context
        header = request.headers.get("authorization")
        if header is None:
            # No key: nothing to look up (the GraphiQL page is fetched this way).
            context.auth_error = Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'")
            return context
        try:
            context.authenticated = await self.authenticate(bearer_secret(header), _address(request))
        except DomainError as error:
            context.auth_error = error
        return context

    async def authenticate(self, secret: str | None, address: str | None) -> Actor:
        """The key's actor; refused without a lookup when the guard already knows the answer."""
        try:
            self.guard.check(address, secret)
            return await self.services.access.authenticate(secret)
        except Unauthenticated as error:
            if secret:
                await self.guard.failed(address, error)
            raise
        except DomainError:
            raise
        except Exception as error:
            # Only the error's class: a driver's message may quote the key prefix it looked up.
            log.warning("authentication failed on %s; answered %s", type(error).__name__, Unavailable.code)
            raise Unavailable("authentication is unavailable for a moment: try again") from None

    def decode_json(self, data: str | bytes) -> object:
        return decode_body(data)

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        if context.authenticated is None:
            error = context.auth_error or Unauthenticated("an API key is required")
            if isinstance(error, Unavailable):
                sub_response.status_code = 503
                sub_response.headers["Retry-After"] = "1"
            elif isinstance(error, RateLimited):
                sub_response.status_code = 429
                sub_response.headers["Retry-After"] = str(error.details.get("retryAfter", 1))
            else:
                sub_response.status_code = 401
                sub_response.headers["WWW-Authenticate"] = "Bearer"
            self.telemetry.errors.labels(error.code).inc()
            refused = ExecutionResult(data=None, errors=[domain_error(error)])
            return [refused] * len(request_data) if isinstance(request_data, list) else refused
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        # strawberry's page loads GraphiQL from a CDN; ours serves it from the package (air-gapped clusters).
        return HTMLResponse(graphiql_page())

    async def run(self, request: Request | WebSocket, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context, root_value)
        finally:
            watch = self._watches.pop(id(request), None)
            if watch is not None:
                watch.cancel()

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        value = params.get("authorization", params.get("Authorization"))
        secret = bearer_secret(value)
        try:
            context.authenticated = await self.authenticate(secret, _address(context.request))
        except DomainError as error:
            self.telemetry.errors.labels(error.code).inc()
            raise ConnectionRejectionError({"message": error.message, "code": error.code}) from None
        if isinstance(context.request, WebSocket):
            self._watches[id(context.request)] = asyncio.create_task(
                self._end_when_revoked(context.request, secret, context.authenticated)
            )
        unset: UnsetType = UNSET
        return unset

    async def _end_when_revoked(self, websocket: WebSocket, secret: str | None, actor: Actor) -> None:
        """A revoked key ends its live subscriptions: at once when its ``KeyRevoked`` event arrives (on
        any replica: the event travels the bus), else at the next periodic re-check, which also ends a
        connection whose key lost a role. Closed with 4403, the protocol's 'Forbidden'."""
        async with self.services.bus.subscribe([key_topic(actor.key_id)]) as revocations:
            revoked = asyncio.ensure_future(anext(aiter(revocations)))
            try:
                allowed = await self._allowed_while_open(websocket, revoked, secret, actor)
            finally:
                revoked.cancel()
        if not allowed:
            with contextlib.suppress(Exception):  # it may have gone meanwhile
                await websocket.close(code=4403, reason="Forbidden")

    async def _allowed_while_open(
        self, websocket: WebSocket, revoked: asyncio.Future[Event], secret: str | None, actor: Actor
    ) -> bool:
        """False as soon as the key is revoked or loses a role; True once the connection closed first."""
        while websocket.application_state is WebSocketState.CONNECTED:
            done, _ = await asyncio.wait({revoked}, timeout=KEY_RECHECK_SECONDS)
            if websocket.application_state is not WebSocketState.CONNECTED:
                return True
            if done and revoked.exception() is None:
                return False
            if done:  # the event subscription broke: the re-checks alone watch the key from now on
                revoked = asyncio.get_running_loop().create_future()
            if not await self.services.access.still_allowed(actor, secret):
                return False
        return True


def _address(request: Request | WebSocket) -> str | None:
    """The client's address (behind a proxy, run uvicorn with ``--forwarded-allow-ips`` so it is the
    client's and not the proxy's)."""
    return request.client.host if request.client else None
