"""Relay connections over the domain's keyset pages: the cursor is the opaque id of an item.

Not ``strawberry.relay``'s ListConnection: it pages by slicing what the resolver returns (offset cursors),
where the repositories answer one keyset page (``first + 1`` rows after an id) in SQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from ptw.api.ids import decode_cursor, encode_cursor
from ptw.domain.errors import BadInput
from ptw.domain.ports import MAX_PAGE_SIZE, Page, PageRequest

DEFAULT_PAGE_SIZE = 50
NodeT = TypeVar("NodeT")
ItemT = TypeVar("ItemT")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    node: NodeT
    cursor: str


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo


def page_request(first: int | None, after: str | None) -> PageRequest:
    """``first`` defaults to 50 and is clamped to 1..1000 rather than refused."""
    size = DEFAULT_PAGE_SIZE if first is None else max(1, min(first, MAX_PAGE_SIZE))
    if not after:
        return PageRequest(first=size)
    try:
        last_id = str(uuid.UUID(decode_cursor(after, "after")))
    except ValueError:
        raise BadInput(f"malformed cursor: {after!r}", field="after") from None
    return PageRequest(first=size, after=last_id)


def connection(
    page: Page[ItemT], to_node: Callable[[ItemT], NodeT], item_id: Callable[[ItemT], str]
) -> Connection[NodeT]:
    edges = [Edge(node=to_node(item), cursor=encode_cursor("after", item_id(item))) for item in page.items]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None),
    )
