"""Per-operation policies run before validation: the per-key rate limit; and hiding field suggestions
("Did you mean ...") from errors in production.

They hook ``on_validate`` because it runs for every operation on every transport (HTTP queries and
mutations, and WebSocket subscriptions, which skip the execution hooks) and is async; an error put in
``pre_execution_errors`` there stops the operation before anything is resolved.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from typing import Any

from graphql import GraphQLError
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

from ptw.api.errors import domain_error
from ptw.domain.errors import RateLimited

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def hide_suggestions(errors: list[GraphQLError]) -> None:
    """Cut any suggestion from the errors' messages. graphql-core can leave them out of validation
    errors, but strawberry gives no way to ask it to, and variable coercion makes its own; so they
    are cut from the messages, whichever step made them."""
    for error in errors:
        if "Did you mean" in error.message:
            error.message = _SUGGESTION.sub("", error.message)
            error.args = (error.message,)


class RateLimit(SchemaExtension):
    """One token of the caller's bucket per operation; none left: RATE_LIMITED with ``retryAfter``
    (whole seconds), and on HTTP the status 429 with a ``Retry-After`` header."""

    async def on_validate(self) -> AsyncIterator[None]:
        context: Any = self.execution_context.context
        limiter = context.services.rate_limiter
        actor = context.authenticated
        if limiter is not None and actor is not None:
            wait = await limiter.take(actor.key_id)
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                context.telemetry.errors.labels(RateLimited.code).inc()
                error = RateLimited(
                    f"too many requests for this API key: retry in {retry_after} s", retryAfter=retry_after
                )
                self.execution_context.pre_execution_errors = [domain_error(error)]
                if isinstance(context.response, Response):
                    context.response.status_code = 429
                    context.response.headers["Retry-After"] = str(retry_after)
        yield
