"""JSON for the live events that cross processes through Redis, derived from the events' dataclasses.

Data only, never pickles, so that a replica of another version (a rolling deploy) can still read what this
one publishes: fields it does not know are ignored, and fields it misses take their defaults."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from ptw.domain.events import (
    EntrypointAnswered,
    EntrypointProbed,
    Event,
    KeyRevoked,
    MetricsRecorded,
    OptimizationProgressed,
    RunChanged,
    RunLogged,
)
from ptw.domain.metrics import MetricBatch, Series

_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    cls.__name__: TypeAdapter(cls)
    for cls in (
        RunChanged,
        RunLogged,
        KeyRevoked,
        OptimizationProgressed,
        EntrypointProbed,
        EntrypointAnswered,
    )
}


class UnknownEvent(ValueError):
    """A message on the bus that is no event this version knows."""


def encode_event(event: Event) -> bytes:
    kind = type(event).__name__
    if isinstance(event, MetricsRecorded):
        return json.dumps({"type": kind, "event": _metrics_to_json(event)}, separators=(",", ":")).encode()
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        raise TypeError(f"not an event: {event!r}")
    return b'{"type":"%s","event":%s}' % (kind.encode(), adapter.dump_json(event))


def decode_event(data: bytes | str) -> Event:
    body = json.loads(data)
    kind = body.get("type") if isinstance(body, dict) else None
    if kind == "MetricsRecorded":
        return _metrics_from_json(body["event"])
    adapter = _ADAPTERS.get(kind) if isinstance(kind, str) else None
    if adapter is None:
        raise UnknownEvent(f"unknown event type {kind!r}")
    event: Event = adapter.validate_python(body["event"])
    return event


# Metric batches are the hot path: each series travels as its columns.
def _metrics_to_json(event: MetricsRecorded) -> dict[str, Any]:
    batch = event.batch
    return {
        "project_id": event.project_id,
        "run_id": batch.run_id,
        "seq": batch.seq,
        "series": [
            {
                "key": s.key,
                "steps": s.steps.tolist(),
                "values": s.values.tolist(),
                "at": s.timestamps.tolist(),
            }
            for s in batch.series
        ],
    }


def _metrics_from_json(body: dict[str, Any]) -> MetricsRecorded:
    series = tuple(Series.of(s["key"], s["steps"], s["values"], s["at"]) for s in body["series"])
    return MetricsRecorded(body["project_id"], MetricBatch(body["run_id"], body["seq"], series))
