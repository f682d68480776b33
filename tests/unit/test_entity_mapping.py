"""Mappings derived from the domain dataclasses: every field travels, and a table that misses one fails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table

from ptw.domain.events import RunChanged
from ptw.domain.runs import Run, RunStatus
from ptw.domain.workflows import Resources, Workflow
from ptw.infra.cache import codec
from ptw.infra.db.mapping import EntityMapping
from ptw.infra.db.repositories.runs import mapping as run_mapping
from ptw.infra.live.event_codec import decode_event, encode_event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def full_run() -> Run:
    """A run whose every field differs from its default."""
    return Run(
        id="r1",
        project_id="p1",
        workflow_id="w1",
        params={"lr": 0.1},
        created_at=NOW,
        status=RunStatus.RUNNING,
        attempt=3,
        resource_class="gpu",
        executor="e1",
        device="cuda:0",
        started_at=NOW,
        finished_at=NOW,
        updated_at=NOW,
        error="boom",
        summary={"loss": 0.5},
        idempotency_key="k",
        optimization_id="o1",
        metric_seq=7,
        metric_keys=["loss"],
        heartbeat_at=NOW,
        drains=1,
        name="first-try",
        tags=["baseline"],
        notes="lr sweep",
    )


def test_every_field_of_a_run_survives_the_cache_and_the_bus() -> None:
    run = full_run()
    assert codec.runs.decode(codec.runs.encode(run)) == run
    assert decode_event(encode_event(RunChanged(run))) == RunChanged(run)


def test_a_nested_dataclass_survives_the_cache() -> None:
    workflow = Workflow(
        "w1", "train", "pkg.mod:fn", "p1", {"type": "object"}, {"a": 1}, Resources(2, 60), NOW
    )
    assert codec.workflows.decode(codec.workflows.encode(workflow)) == workflow


def test_row_values_hold_every_field_enums_by_value() -> None:
    values = run_mapping.values(full_run())
    assert values["status"] == "RUNNING" and type(values["status"]) is str
    assert set(values) == set(run_mapping.table.c.keys())


def test_a_table_without_a_column_for_a_field_fails_on_import() -> None:
    table = Table("t", MetaData(), Column("id", String), Column("attempt", Integer))
    with pytest.raises(TypeError, match="missing columns"):
        EntityMapping(Run, table)
