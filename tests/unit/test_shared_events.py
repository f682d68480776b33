"""``next`` messages of shared subscription events: encoded once, each subscriber's id spliced in."""

from __future__ import annotations

import json

from graphql import ExecutionResult

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
