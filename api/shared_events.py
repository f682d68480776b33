"""Subscription events executed and encoded once per replica, whatever the number of subscribers.

Fifty subscribers of one run each execute their selection on every batch and encode the answer, which
makes a replica CPU-bound long before its network is. An event type that opts in (``SHARED_EXECUTION``
on its class, e.g. ``MetricBatch``) is shared instead: the GraphQL object of a batch is already one
object for every subscriber sent that batch (``MetricBatch.from_domain``), so the result of executing a
selection on it is looked up by (that object, document, operation name, variables) and executed only by
the first subscriber; ``next`` messages whose data came from here are encoded once and each subscriber's
id spliced in front.

Authorization is untouched: each subscriber's access to the run is checked when it subscribes, and a
shared event type's fields must not depend on who asks (``MetricBatch``'s do not). Each subscriber still
follows the run on its own (its cursor, its resume with ``after:``), so only identical events are shared.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from graphql import ExecutionResult, print_ast
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
_selections: dict[int, tuple[Any, str]] = {}  # id(operation node) -> (node, its text)


def _selection(executor: Any) -> tuple[str, str | None, str]:
    operation = executor.operation
    known = _selections.get(id(operation))
    if known is None or known[0] is not operation:
        text = operation.loc.source.body if operation.loc else print_ast(operation)
        if len(_selections) > 4 * RECENT_EVENTS:
            _selections.clear()
        known = _selections[id(operation)] = (operation, text)
    name = operation.name.value if operation.name else None
    variables = repr(sorted(executor.variable_values.coerced.items()))
    return known[1], name, variables


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


def encoded_next(operation_id: str, payload: dict[str, Any]) -> str | None:
    """The ``next`` message of ``payload`` as JSON when its data is a shared event's (encoded once for
    all subscribers); None for any other payload, to be encoded as usual."""
    if len(payload) != 1 or "data" not in payload:
        return None
    data = payload["data"]
    known = _encoded.get(id(data))
    if known is None or known[0] is not data:
        return None
    text = known[1]
    if text is None:
        text = encode_json(data)
        _encoded.entries[id(data)] = (data, text)
    return f'{{"id":{encode_json(operation_id)},"type":"next","payload":{{"data":{text}}}}}'
