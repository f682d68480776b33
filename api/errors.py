"""How failures reach clients: domain errors keep their message and code, anything else is masked."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from ptw.domain.errors import DomainError

log = logging.getLogger("ptw.api")

MASKED_MESSAGE = "Unexpected error."
INTERNAL = "INTERNAL_SERVER_ERROR"
INVALID_QUERY = "GRAPHQL_VALIDATION_FAILED"

# Details of a DomainError that are safe and useful to clients (which input failed, and where; when to
# try again).
_PUBLIC_DETAILS = ("field", "path", "kind", "reason", "retryAfter")


def is_expected(error: GraphQLError) -> bool:
    """Domain errors and errors of the query itself (syntax, validation, variables) are shown as they are."""
    original = error.original_error
    return original is None or isinstance(original, (DomainError, GraphQLError))


def error_code(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, DomainError):
        return original.code
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    return INVALID_QUERY if is_expected(error) else INTERNAL


def domain_error(error: DomainError) -> GraphQLError:
    """A GraphQL error for a domain error raised outside a resolver (authentication, WebSocket)."""
    return GraphQLError(error.message, extensions=_extensions(error))


def _extensions(error: DomainError) -> dict[str, Any]:
    return {"code": error.code} | {k: v for k, v in error.details.items() if k in _PUBLIC_DETAILS}


def database_error(error: BaseException | None) -> BaseException | None:
    """The database error (SQLAlchemy's, which carries ``statement`` and the driver's ``orig``) in the
    chain of ``error``, if any."""
    seen = 0
    while error is not None and seen < 20:
        if hasattr(error, "statement") and hasattr(error, "orig"):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def redacted(error: BaseException) -> str:
    """A database error told without data: the classes, the SQLSTATE, the statement and where it was
    raised. The driver's message is left out: it quotes values (``Key (name)=(...) already exists``,
    ``Token "NaN" is invalid``), which are tenants' data."""
    found = database_error(error) or error
    orig = getattr(found, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    statement = " ".join(str(getattr(found, "statement", "") or "").split())[:2000]
    frames = "".join(traceback.format_tb(error.__traceback__))
    return f"{type(found).__name__} ({type(orig).__name__}, sqlstate {state}) in: {statement}\n{frames}"


class RedactDatabaseErrors(logging.Filter):
    """Installed on the server's log handlers: a record carrying a database error logs it redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and database_error(error) is not None:
            record.msg = f"{record.getMessage()}: {redacted(error)}"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def log_unexpected(errors: Iterable[GraphQLError]) -> None:
    for error in errors:
        if not is_expected(error):
            original = error.original_error
            where = ".".join(map(str, error.path or ())) or "<operation>"
            if original is not None and database_error(original) is not None:
                log.error("unexpected database error at %s: %s", where, redacted(original))
                continue
            log.error(
                "unexpected error at %s: %r",
                where,
                original,
                exc_info=(type(original), original, original.__traceback__) if original else None,
            )


class ErrorPolicy(MaskErrors):
    """MaskErrors that also gives every error its ``extensions.code``."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda error: not is_expected(error), error_message=MASKED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL}
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            original = error.original_error
            if isinstance(original, DomainError):
                error.extensions = {**(error.extensions or {}), **_extensions(original)}
            elif "code" not in (error.extensions or {}):
                error.extensions = {**(error.extensions or {}), "code": error_code(error)}
        return processed
