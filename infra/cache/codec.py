"""JSON of the cached domain objects (workflows, runs, projects), written field by field.

Explicit rather than ``dataclasses.asdict`` plus reflection: the few types are stable, and a field the
codec does not know fails loudly in a test instead of being silently dropped from the cache."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ptw.domain.runs import Run, RunStatus
from ptw.domain.tenancy import Project
from ptw.domain.workflows import Resources, Workflow


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def encode_workflow(workflow: Workflow) -> str:
    return _dump(
        {
            "id": workflow.id,
            "name": workflow.name,
            "entrypoint": workflow.entrypoint,
            "project_id": workflow.project_id,
            "params_schema": workflow.params_schema,
            "defaults": workflow.defaults,
            "gpus": workflow.resources.gpus,
            "timeout_seconds": workflow.resources.timeout_seconds,
            "created_at": _instant(workflow.created_at),
        }
    )


def decode_workflow(text: str) -> Workflow:
    v = json.loads(text)
    return Workflow(
        id=v["id"],
        name=v["name"],
        entrypoint=v["entrypoint"],
        project_id=v["project_id"],
        params_schema=v["params_schema"],
        defaults=v["defaults"],
        resources=Resources(gpus=v["gpus"], timeout_seconds=v["timeout_seconds"]),
        created_at=_parse_instant(v["created_at"]),
    )


def encode_run(run: Run) -> str:
    return _dump(
        {
            "id": run.id,
            "project_id": run.project_id,
            "workflow_id": run.workflow_id,
            "params": run.params,
            "created_at": _instant(run.created_at),
            "status": run.status.value,
            "attempt": run.attempt,
            "resource_class": run.resource_class,
            "executor": run.executor,
            "device": run.device,
            "started_at": _instant(run.started_at),
            "finished_at": _instant(run.finished_at),
            "updated_at": _instant(run.updated_at),
            "error": run.error,
            "summary": run.summary,
            "idempotency_key": run.idempotency_key,
            "optimization_id": run.optimization_id,
            "metric_seq": run.metric_seq,
            "metric_keys": run.metric_keys,
            "heartbeat_at": _instant(run.heartbeat_at),
            "drains": run.drains,
            "name": run.name,
            "tags": run.tags,
            "notes": run.notes,
            "external": run.external,
        }
    )


def decode_run(text: str) -> Run:
    v = json.loads(text)
    created_at = _parse_instant(v["created_at"])
    if created_at is None:
        raise ValueError("a cached run has no created_at")
    return Run(
        id=v["id"],
        project_id=v["project_id"],
        workflow_id=v["workflow_id"],
        params=v["params"],
        created_at=created_at,
        status=RunStatus(v["status"]),
        attempt=v["attempt"],
        resource_class=v["resource_class"],
        executor=v["executor"],
        device=v["device"],
        started_at=_parse_instant(v["started_at"]),
        finished_at=_parse_instant(v["finished_at"]),
        updated_at=_parse_instant(v["updated_at"]),
        error=v["error"],
        summary=v["summary"],
        idempotency_key=v["idempotency_key"],
        optimization_id=v["optimization_id"],
        metric_seq=v["metric_seq"],
        metric_keys=list(v["metric_keys"]),
        # Added after v1 values were written: read with defaults (a cached run is a finished one).
        heartbeat_at=_parse_instant(v.get("heartbeat_at")),
        drains=v.get("drains", 0),
        name=v.get("name", ""),
        tags=list(v.get("tags", ())),
        notes=v.get("notes"),
        external=v.get("external", False),
    )


def encode_project(project: Project) -> str:
    return _dump({"id": project.id, "name": project.name, "created_at": _instant(project.created_at)})


def decode_project(text: str) -> Project:
    v = json.loads(text)
    created_at = _parse_instant(v["created_at"])
    if created_at is None:
        raise ValueError("a cached project has no created_at")
    return Project(id=v["id"], name=v["name"], created_at=created_at)
