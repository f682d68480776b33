"""Expected failures of the domain, each carrying the code clients see in ``extensions.code``."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A failure the caller can act on; never masked by the API."""

    code = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadInput(DomainError):
    code = "BAD_USER_INPUT"


class NotFound(DomainError):
    code = "NOT_FOUND"

    @classmethod
    def of(cls, kind: str, ident: object) -> NotFound:
        return cls(f"{kind} {ident!s} not found", kind=kind)


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Conflict(DomainError):
    code = "CONFLICT"


class RateLimited(DomainError):
    code = "RATE_LIMITED"


class IllegalTransition(Conflict):
    """A run was asked to move between states the state machine does not connect."""
