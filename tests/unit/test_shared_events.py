"""``next`` messages of shared subscription events: encoded once, each subscriber's id spliced in."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from graphql import ExecutionResult, GraphQLError, parse
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from ptw.api import shared_events


def test_a_shared_event_is_encoded_once_and_sent_under_each_subscribers_id() -> None:
    data = {"runMetrics": {"cursor": "c1", "columns": {"loss": {"steps": [1], "values": [0.5]}}}}
    shared_events._store(("key",), object(), ExecutionResult(data=data))
    first = shared_events.encoded_next("a", {"data": data})
    second = shared_events.encoded_next('b"\\', {"data": data})
    assert first is not None and second is not None
    assert json.loads(first) == {"id": "a", "type": "next", "payload": {"data": data}}
    assert json.loads(second) == {"id": 'b"\\', "type": "next", "payload": {"data": data}}


def test_other_payloads_are_left_to_the_usual_encoding() -> None:
    data = {"runMetrics": {"cursor": "c2"}}
    assert shared_events.encoded_next("a", {"data": data}) is None  # never executed as a shared event
    shared_events._store(("other",), object(), ExecutionResult(data=data))
    assert shared_events.encoded_next("a", {"data": data, "extensions": {"x": 1}}) is None


class _Operation:
    def __init__(self, op_id: str) -> None:
        self.id, self.completed = op_id, False


class _Sender:
    def __init__(self, fails: Exception | None = None) -> None:
        self.sent: list[str] = []
        self.fails = fails

    async def send_text(self, text: str) -> None:
        if self.fails is not None:
            raise self.fails
        self.sent.append(text)


def _direct(sender: _Sender, operation: _Operation, selection: Any) -> shared_events.DirectNext:
    token = shared_events.CURRENT_OPERATION.set((sender, operation))
    try:
        direct = shared_events.DirectNext.for_operation(*selection)
    finally:
        shared_events.CURRENT_OPERATION.reset(token)
    assert direct is not None
    return direct


def _operation_node(text: str) -> Any:
    return parse(text).definitions[0]


async def test_an_event_already_executed_for_the_selection_is_sent_straight_to_the_socket() -> None:
    node = _operation_node("subscription S($p: Boolean!) { runMetrics(runId: 1) { cursor @skip(if: $p) } }")
    variables = {"p": True}
    event, data = object(), {"runMetrics": {"cursor": "c9"}}
    key = (id(event), *shared_events.selection_of(node, variables))
    shared_events._store(key, event, ExecutionResult(data))
    sender, operation = _Sender(), _Operation('op"1')
    direct = _direct(sender, operation, (node, variables))
    assert await direct.sent(event)
    expected = {"id": 'op"1', "type": "next", "payload": {"data": data}}
    assert [json.loads(text) for text in sender.sent] == [expected]
    # Another selection, other variables, or an event never executed: left to strawberry.
    assert not await _direct(sender, operation, (node, {"p": False})).sent(event)
    assert not await direct.sent(object())
    operation.completed = True  # strawberry sent its complete or error: nothing more goes out
    assert not await direct.sent(event)
    assert len(sender.sent) == 1


async def test_an_event_whose_execution_failed_is_never_sent_directly() -> None:
    node = _operation_node("subscription { runMetrics(runId: 1) { cursor } }")
    event = object()
    key = (id(event), *shared_events.selection_of(node, {}))
    shared_events._store(key, event, ExecutionResult(None, [GraphQLError("boom")]))
    sender = _Sender()
    assert not await _direct(sender, _Operation("1"), (node, {})).sent(event)
    assert sender.sent == []


async def test_outside_a_websocket_operation_there_is_no_direct_path() -> None:
    assert shared_events.DirectNext.for_operation(_operation_node("subscription { a }"), {}) is None


@pytest.mark.parametrize(
    "closed",
    [WebSocketDisconnect(1006), WebSocketDisconnected("Cannot call send once closed")],
)
async def test_a_closed_socket_leaves_the_operation_waiting_for_its_cancellation(closed: Exception) -> None:
    node = _operation_node("subscription { runMetrics(runId: 2) { cursor } }")
    event = object()
    shared_events._store((id(event), *shared_events.selection_of(node, {})), event, ExecutionResult({"x": 1}))
    sending = asyncio.ensure_future(_direct(_Sender(fails=closed), _Operation("1"), (node, {})).sent(event))
    done, _ = await asyncio.wait({sending}, timeout=0.1)
    assert not done  # no exception into strawberry's stream: the connection's end cancels the operation
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending


def test_subscribers_resuming_from_different_cursors_share_but_other_selections_do_not() -> None:
    node = _operation_node(
        "subscription M($run: ID!, $after: String, $more: Boolean!) {"
        " runMetrics(runId: $run, after: $after) { cursor columns points @include(if: $more) { key } } }"
    )

    def key(after: str | None, more: bool) -> Any:
        return shared_events.selection_of(node, {"run": "r", "after": after, "more": more})

    # The root field's own arguments chose the event (already in the key): they do not split subscribers.
    assert key("c1", True) == key(None, True)
    assert key("c1", True) != key("c1", False)
    spread = _operation_node("subscription($a: String) { ...F }")
    # A named fragment: every variable counts.
    assert shared_events.selection_of(spread, {"a": "1"}) != shared_events.selection_of(spread, {"a": "2"})
