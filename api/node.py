"""The Node interface and ``node(id:)``: any object by its global ID, scoped to the caller."""

from __future__ import annotations

import strawberry

from ptw.api.ids import decode_any_id


@strawberry.interface(description="An object with a global ID, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


def node_type_of(global_id: str) -> tuple[str, str]:
    return decode_any_id(global_id)
