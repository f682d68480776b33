"""JSON for the live events that cross processes through Redis: datetimes in ISO 8601, enums by value.

Hand-written rather than pickled so that a replica of another version (a rolling deploy) can still read
what this one publishes: fields it does not know are ignored, and nothing but data is ever decoded."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from ptw.domain.events import (
    Event,
    KeyRevoked,
    MetricsRecorded,
    OptimizationProgressed,
    Progress,
    RunChanged,
    RunLogged,
)
from ptw.domain.metrics import MetricBatch, Series
from ptw.domain.optimizations import (
    Direction,
    Optimization,
    OptimizationKind,
    OptimizationResult,
    OptimizationStatus,
    ResultState,
)
from ptw.domain.runs import Run, RunStatus

_RUN_FIELDS = frozenset(f.name for f in dataclasses.fields(Run))
_RUN_INSTANTS = ("created_at", "started_at", "finished_at", "updated_at", "heartbeat_at")


class UnknownEvent(ValueError):
    """A message on the bus that is no event this version knows."""


def encode_event(event: Event) -> bytes:
    body: dict[str, Any]
    if isinstance(event, RunChanged):
        body = {"type": "RunChanged", "run": _run_to_json(event.run)}
    elif isinstance(event, MetricsRecorded):
        batch = event.batch
        body = {
            "type": "MetricsRecorded",
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
    elif isinstance(event, RunLogged):
        body = {
            "type": "RunLogged",
            "run_id": event.run_id,
            "project_id": event.project_id,
            "message": event.message,
            "stream": event.stream,
            "at": event.at.isoformat(),
        }
    elif isinstance(event, KeyRevoked):
        body = {"type": "KeyRevoked", "key_id": event.key_id}
    elif isinstance(event, OptimizationProgressed):
        body = {
            "type": "OptimizationProgressed",
            "optimization": _entity_to_json(event.optimization),
            "progress": event.progress.value,
            "result": _entity_to_json(event.result) if event.result is not None else None,
            "step": event.step,
            "value": event.value,
        }
    else:
        raise TypeError(f"not an event: {event!r}")
    return json.dumps(body, separators=(",", ":")).encode()


def decode_event(data: bytes | str) -> Event:
    body = json.loads(data)
    kind = body.get("type") if isinstance(body, dict) else None
    if kind == "RunChanged":
        return RunChanged(_run_from_json(body["run"]))
    if kind == "MetricsRecorded":
        series = tuple(Series.of(s["key"], s["steps"], s["values"], s["at"]) for s in body["series"])
        return MetricsRecorded(body["project_id"], MetricBatch(body["run_id"], body["seq"], series))
    if kind == "RunLogged":
        return RunLogged(
            run_id=body["run_id"],
            project_id=body["project_id"],
            message=body["message"],
            stream=body["stream"],
            at=datetime.fromisoformat(body["at"]),
        )
    if kind == "KeyRevoked":
        return KeyRevoked(body["key_id"])
    if kind == "OptimizationProgressed":
        result = body.get("result")
        return OptimizationProgressed(
            optimization=_optimization_from_json(body["optimization"]),
            progress=Progress(body["progress"]),
            result=_result_from_json(result) if result is not None else None,
            step=body.get("step"),
            value=body.get("value"),
        )
    raise UnknownEvent(f"unknown event type {kind!r}")


def _run_to_json(run: Run) -> dict[str, Any]:
    body = dataclasses.asdict(run)
    body["status"] = run.status.value
    for name in _RUN_INSTANTS:
        instant = getattr(run, name)
        body[name] = instant.isoformat() if instant is not None else None
    return body


def _run_from_json(body: dict[str, Any]) -> Run:
    fields = {k: v for k, v in body.items() if k in _RUN_FIELDS}
    fields["status"] = RunStatus(fields["status"])
    for name in _RUN_INSTANTS:
        if fields.get(name) is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    return Run(**fields)


def _entity_to_json(entity: Optimization | OptimizationResult) -> dict[str, Any]:
    body = {}
    for f in dataclasses.fields(entity):
        value = getattr(entity, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif f.name == "intermediate":
            value = {str(step): v for step, v in value.items()}
        body[f.name] = value
    return body  # enums are StrEnums: json writes their values


def _known(cls: type[Any], body: dict[str, Any], instants: tuple[str, ...]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    fields = {k: v for k, v in body.items() if k in names}
    for name in instants:
        if fields.get(name) is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    return fields


def _optimization_from_json(body: dict[str, Any]) -> Optimization:
    fields = _known(Optimization, body, ("created_at", "finished_at", "started_at"))
    fields["kind"] = OptimizationKind(fields["kind"])
    fields["status"] = OptimizationStatus(fields["status"])
    fields["direction"] = Direction(fields["direction"])
    return Optimization(**fields)


def _result_from_json(body: dict[str, Any]) -> OptimizationResult:
    fields = _known(OptimizationResult, body, ("created_at",))
    fields["state"] = ResultState(fields["state"])
    fields["intermediate"] = {int(step): v for step, v in (fields.get("intermediate") or {}).items()}
    return OptimizationResult(**fields)
