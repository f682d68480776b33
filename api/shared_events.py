"""Subscription events executed and encoded once per replica, whatever the number of subscribers.

Fifty subscribers of one run each execute their selection on every batch and encode the answer, which
makes a replica CPU-bound long before its network is. An event type that opts in (``SHARED_EXECUTION``
on its class, e.g. ``MetricBatch``) is shared instead: the GraphQL object of a batch is already one
object for every subscriber sent that batch (``MetricBatch.from_domain``), so the result of executing a
selection on it is looked up by (that object, document, operation name, variables) and executed only by
the first subscriber; ``next`` messages whose data came from here are encoded once and each subscriber's
id spliced in front.

Past the first subscriber, an event need not go through strawberry at all: over graphql-transport-ws a
subscription's resolver can ask ``DirectNext`` to send an event whose result is already here, error-free,
straight to its socket (its id spliced in), and yield only the events it could not send that way. This
skips, per subscriber and event, graphql-core's per-event execution, strawberry's extension hooks and
result handling and the handler's message building, which were most of a replica's CPU with 50
subscribers of one run. Errors never take that path: an event whose execution failed is yielded, and
strawberry masks and sends its errors as usual.

Authorization is untouched: each subscriber's access to the run is checked when it subscribes, and a
shared event type's fields must not depend on who asks (``MetricBatch``'s do not). Each subscriber still
follows the run on its own (its cursor, its resume with ``after:``), so only identical events are shared.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, Protocol

from graphql import (
    ExecutionResult,
    FieldNode,
    OperationDefinitionNode,
    VariableNode,
    Visitor,
    print_ast,
    visit,
)
from starlette import websockets
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from ptw.api.json_encoding import encode_json

# Subscribers of one batch are sent it within milliseconds of each other: a few recent events suffice.
RECENT_EVENTS = 64
SHARED_EXECUTION = "__shared_execution__"


class _Recent:
    """Bounded, oldest dropped first; each entry keeps its key's objects alive so no id is reused."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        return self.entries.get(key)

    def put(self, key: Any, value: Any) -> None:
        self.entries[key] = value
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


_results = _Recent(RECENT_EVENTS)  # (id(event), selection) -> (event, ExecutionResult)
_encoded = _Recent(RECENT_EVENTS)  # id(data) -> (data, its JSON)
# id(operation node) -> (node, its text, the variables its events' results may depend on; None: all)
_selections: dict[int, tuple[Any, str, frozenset[str] | None]] = {}
# What, besides the event, decides a shared event's result: the document text, operation name, variables.
Selection = tuple[str, str | None, str]


def _selection(executor: Any) -> Selection:
    return selection_of(executor.operation, executor.variable_values.coerced)


def selection_of(operation: OperationDefinitionNode, variables: dict[str, Any]) -> Selection:
    """What, besides the event, decides a shared event's result: the document, operation and the values of
    the variables used below the root field (its own arguments, e.g. ``runMetrics(after: $after)``, chose
    the event, which is already part of the key: subscribers resuming from different cursors share)."""
    known = _selections.get(id(operation))
    if known is None or known[0] is not operation:
        text = operation.loc.source.body if operation.loc else print_ast(operation)
        if len(_selections) > 4 * RECENT_EVENTS:
            _selections.clear()
        known = _selections[id(operation)] = (operation, text, _event_variables(operation))
    name = operation.name.value if operation.name else None
    used = known[2]
    values = variables.items() if used is None else ((k, v) for k, v in variables.items() if k in used)
    return known[1], name, repr(sorted(values))


class _Variables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.spreads = False

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        self.names.add(node.name.value)

    def enter_fragment_spread(self, *_: Any) -> None:
        self.spreads = True


def _event_variables(operation: OperationDefinitionNode) -> frozenset[str] | None:
    """The variables an event's result may depend on: those in the root fields' directives and selections,
    not in their arguments (a subscription's root field resolves to the event itself). None (all of them)
    when a named fragment is used, whose variables are not read here."""
    found = _Variables()
    for root in operation.selection_set.selections:
        parts: list[Any] = [*(root.directives or ())] if isinstance(root, FieldNode) else [root]
        if isinstance(root, FieldNode) and root.selection_set is not None:
            parts.append(root.selection_set)
        for part in parts:
            visit(part, found)
    return None if found.spreads else frozenset(found.names)


class SharedEventExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Executes an opted-in subscription event once for all subscribers with the same selection."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        event = self.root_value
        if not getattr(type(event), SHARED_EXECUTION, False):
            return super().execute_operation(serially)
        key = (id(event), *_selection(self))
        known = _results.get(key)
        if known is not None and known[0] is event:
            return known[1]
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            return _stored_when_done(key, event, result)
        _store(key, event, result)
        return result


async def _stored_when_done(key: Any, event: Any, pending: Any) -> Any:
    result = await pending
    _store(key, event, result)
    return result


def _store(key: Any, event: Any, result: Any) -> None:
    if isinstance(result, ExecutionResult) and not result.errors and result.data is not None:
        _results.put(key, (event, result))
        _encoded.put(id(result.data), (result.data, None))


def _data_text(data: Any) -> str | None:
    known = _encoded.get(id(data))
    if known is None or known[0] is not data:
        return None
    text: str | None = known[1]
    if text is None:
        text = encode_json(data)
        _encoded.entries[id(data)] = (data, text)
    return text


def next_message(operation_id: str, data_text: str) -> str:
    return f'{{"id":{encode_json(operation_id)},"type":"next","payload":{{"data":{data_text}}}}}'


def encoded_next(operation_id: str, payload: dict[str, Any]) -> str | None:
    """The ``next`` message of ``payload`` as JSON when its data is a shared event's (encoded once for
    all subscribers); None for any other payload, to be encoded as usual."""
    if len(payload) != 1 or "data" not in payload:
        return None
    text = _data_text(payload["data"])
    return None if text is None else next_message(operation_id, text)


class Sender(Protocol):
    """The connection an operation runs on (``ws_messages.TransportWsHandler``)."""

    async def send_text(self, text: str) -> None: ...


class Operation(Protocol):
    id: str
    completed: bool


# A send to a client that went away, or (starlette >= 1.0, a RuntimeError) after we closed it (a revoked key).
_GONE = (
    websockets.WebSocketDisconnect,
    getattr(websockets, "WebSocketDisconnected", websockets.WebSocketDisconnect),
)
# Set by the graphql-transport-ws handler in each operation's task: where a resolver may send directly.
CURRENT_OPERATION: ContextVar[tuple[Sender, Operation] | None] = ContextVar("ptw_ws_operation", default=None)


class DirectNext:
    """Sends a subscription's shared events straight to its socket when their result is already known."""

    def __init__(self, sender: Sender, operation: Operation, selection: Selection) -> None:
        self.sender, self.operation, self.selection = sender, operation, selection

    @classmethod
    def for_operation(
        cls, operation: OperationDefinitionNode, variables: dict[str, Any]
    ) -> DirectNext | None:
        """None outside a graphql-transport-ws operation (HTTP, the legacy protocol, a test's own call)."""
        current = CURRENT_OPERATION.get()
        if current is None:
            return None
        return cls(current[0], current[1], selection_of(operation, variables))

    async def sent(self, event: Any) -> bool:
        """True once ``event``'s ``next`` went out; False when it must be yielded (its result is not
        here, or had errors, or the operation is completing), for strawberry to execute and send."""
        known = _results.get((id(event), *self.selection))
        if known is None or known[0] is not event or self.operation.completed:
            return False
        text = _data_text(known[1].data)
        if text is None:
            return False
        try:
            await self.sender.send_text(next_message(self.operation.id, text))
        except _GONE:
            # The connection is gone: its handler is ending and cancels this operation.
            await asyncio.get_running_loop().create_future()
        return True
