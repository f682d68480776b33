"""Opaque global IDs (base64 of ``Type:uuid``) and the cursors of connections and metric streams.

The same encoding as ``strawberry.relay.GlobalID``; hand-written because a malformed or foreign id must
be the API's BAD_USER_INPUT (and an id of another type NOT_FOUND), and the metric cursors share it."""

from __future__ import annotations

import base64
import binascii
import uuid

from ptw.domain.errors import BadInput, NotFound

NODE_TYPES = frozenset(
    {"ApiKey", "Artifact", "Optimization", "OptimizationResult", "Project", "Run", "Workflow"}
)


def _b64encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _b64decode(value: str, what: str) -> str:
    try:
        return base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise BadInput(f"malformed {what}: {value!r}", field=what) from None


def encode_id(type_name: str, ident: str) -> str:
    return _b64encode(f"{type_name}:{ident}")


def decode_any_id(global_id: str) -> tuple[str, str]:
    """(type name, uuid) of a global ID; BAD_USER_INPUT when it is not one of ours."""
    type_name, sep, ident = _b64decode(global_id, "id").partition(":")
    if not sep or type_name not in NODE_TYPES:
        raise BadInput(f"malformed id: {global_id!r}", field="id")
    try:
        # Normalised, and checked so a non-UUID never reaches a UUID column of the database.
        ident = str(uuid.UUID(ident))
    except ValueError:
        raise BadInput(f"malformed id: {global_id!r}", field="id") from None
    return type_name, ident


def decode_id(global_id: str, type_name: str) -> str:
    """The uuid of a global ID of ``type_name``; another type's ID is reported like a missing object."""
    found_type, ident = decode_any_id(global_id)
    if found_type != type_name:
        raise NotFound.of(type_name, global_id)
    return ident


def decode_optional_id(global_id: str | None, type_name: str) -> str | None:
    return None if global_id is None else decode_id(global_id, type_name)


def encode_cursor(kind: str, value: str | int) -> str:
    return _b64encode(f"{kind}:{value}")


def decode_cursor(cursor: str, kind: str) -> str:
    found, sep, value = _b64decode(cursor, "cursor").partition(":")
    if not sep or found != kind or not value:
        raise BadInput(f"malformed cursor: {cursor!r}", field="after")
    return value


def decode_int_cursor(cursor: str, kind: str) -> int:
    value = decode_cursor(cursor, kind)
    try:
        number = int(value)
    except ValueError:
        raise BadInput(f"malformed cursor: {cursor!r}", field="after") from None
    if number < 0:
        raise BadInput(f"malformed cursor: {cursor!r}", field="after")
    return number
