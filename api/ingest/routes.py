"""``POST /api/runs/{run_id}/metrics``: authorized like every call (Bearer key, the run's project, the
key's rate limit), validated and stored like every batch (``TrackingService.log_columns``).

The run is named by its global id, its uuid or its short id. Answers ``{"stored": n, "cursor": seq}``;
failures ``{"error": message, "code": CODE}`` with the HTTP status of the code.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ptw.api.ids import decode_id
from ptw.api.ingest.body import decode
from ptw.api.view import bearer_secret
from ptw.domain.errors import DomainError, RateLimited
from ptw.domain.run_labels import is_short_id
from ptw.domain.tenancy import Actor

if TYPE_CHECKING:
    from ptw.infra.bootstrap import Services

STATUS = {
    "BAD_USER_INPUT": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "RATE_LIMITED": 429,
    "SERVICE_UNAVAILABLE": 503,
}


Authenticate = Callable[[str | None, str | None], Awaitable[Actor]]


def ingest_routes(services: Services, authenticate: Authenticate) -> list[Route]:
    """``authenticate(secret, client address)``: the GraphQL endpoint's, so floods of bad keys are
    refused here before the database as there, and a database gone answers 503 as there."""

    async def record(request: Request) -> Response:
        try:
            return await _record(services, authenticate, request)
        except DomainError as error:
            headers = {}
            if isinstance(error, RateLimited):
                headers["Retry-After"] = str(error.details.get("retryAfter", 1))
            body = {"error": error.message, "code": error.code}
            return JSONResponse(body, STATUS.get(error.code, 400), headers=headers)

    return [Route("/api/runs/{run_id}/metrics", record, methods=["POST"])]


async def _record(services: Services, authenticate: Authenticate, request: Request) -> Response:
    client = request.client.host if request.client else None
    actor = await authenticate(bearer_secret(request.headers.get("authorization")), client)
    if services.rate_limiter is not None:
        wait = await services.rate_limiter.take(actor.key_id)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise RateLimited(
                f"too many requests for this API key: retry in {retry_after} s", retryAfter=retry_after
            )
    ref = request.path_params["run_id"]
    run_id = await services.runs.resolve_id(actor, ref) if is_short_id(ref) else decode_id(ref, "Run")
    columns = decode(request.headers.get("content-type", ""), await request.body())
    stored, cursor = await services.tracking.log_columns(actor, run_id, columns)
    return JSONResponse({"stored": stored, "cursor": cursor})
