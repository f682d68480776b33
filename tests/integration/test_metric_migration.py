"""The migration to block storage carries every point stored row by row over, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, Table, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ptw.domain.tenancy import Project
from ptw.domain.workflows import Workflow
from ptw.infra.db import Database
from ptw.infra.db.mapping import EntityMapping
from ptw.infra.db.metric_blocks import BLOCK_STEPS
from ptw.infra.db.repositories import projects, runs, workflows
from tests.fixtures.databases import BACKENDS, fresh_postgres_url, sqlite_url
from tests.integration.test_repositories import a_run, at, new_id

BEFORE = "d001"  # the last revision that stored a row per point


@asynccontextmanager
async def database_at(backend: str, tmp_path: Path, revision: str) -> AsyncIterator[Database]:
    if backend == "sqlite":
        database = Database(sqlite_url(tmp_path / "ptw.db"))
        try:
            await database.upgrade(revision)
            yield database
        finally:
            await database.dispose()
        return
    async with fresh_postgres_url() as url:
        database = Database(url)
        try:
            await database.upgrade(revision)
            yield database
        finally:
            await database.dispose()


async def insert_as_of(conn: AsyncConnection, mapping: EntityMapping[Any], *entities: object) -> None:
    """Insert entities into a schema of an older revision: only the columns that revision has (a column
    added later, like runs.waiting, does not exist there yet)."""
    name = mapping.table.name
    present = {c["name"] for c in await conn.run_sync(lambda sync: inspect(sync).get_columns(name))}
    old = Table(name, MetaData(), *(Column(c.name, c.type) for c in mapping.table.c if c.name in present))
    rows = [{k: v for k, v in mapping.values(e).items() if k in present} for e in entities]
    await conn.execute(old.insert(), rows)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_points_stored_row_by_row_survive_the_upgrade(backend: str, tmp_path: Path) -> None:
    async with database_at(backend, tmp_path, BEFORE) as database:
        uow_factory = database.uow_factory()
        project = Project(new_id(), f"project-{new_id()[:8]}", at(0))
        workflow = Workflow(new_id(), "train", "pkg.mod:main", project.id, {"type": "object"}, {"lr": 0.1})
        run, other = a_run(project, workflow), a_run(project, workflow, 1)
        async with database.engine.begin() as conn:
            await insert_as_of(conn, projects.mapping, project)
            await insert_as_of(conn, workflows.mapping, workflow)
            await insert_as_of(conn, runs.mapping, run, other)
        # A resumed attempt (seq 7) overwrote steps 1000-1999 of the first one, as the old upsert did.
        rows = [(run.id, "loss", s, s / 10, at(s), 7 if s >= 1000 else 1) for s in range(2 * BLOCK_STEPS + 3)]
        rows += [(run.id, "acc", s, 0.5, at(s), 2) for s in (0, 40, 5000)] + [
            (other.id, "loss", 3, 9.0, at(3), 1)
        ]
        insert = text(
            "INSERT INTO metric_points (run_id, key, step, value, ts, seq) VALUES (:r, :k, :s, :v, :t, :q)"
        )
        async with database.engine.begin() as conn:
            await conn.execute(insert, [dict(zip("rksvtq", r, strict=True)) for r in rows])

        await database.upgrade()

        async with database.engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "metric_points" not in tables
        async with uow_factory() as uow:
            loss = await uow.metrics.read(run.id, "loss")
            acc = (await uow.metrics.read(run.id, "acc")).points
            latest = await uow.metrics.latest([run.id, other.id])
            replayed = await uow.metrics.batches_after(run.id, 1)
            assert await uow.metrics.count(run.id, "loss") == 2 * BLOCK_STEPS + 3
        assert loss.steps.tolist() == list(range(2 * BLOCK_STEPS + 3))
        assert loss.values.tolist() == [s / 10 for s in range(2 * BLOCK_STEPS + 3)]
        assert loss.timestamps.tolist() == [at(s).timestamp() for s in range(2 * BLOCK_STEPS + 3)]
        assert [(p.step, p.timestamp) for p in acc] == [(0, at(0)), (40, at(40)), (5000, at(5000))]
        assert [(p.key, p.step) for p in latest[run.id]] == [("acc", 5000), ("loss", 2 * BLOCK_STEPS + 2)]
        assert [(p.key, p.step, p.value) for p in latest[other.id]] == [("loss", 3, 9.0)]
        assert [(b.seq, len(b)) for b in replayed] == [(2, 3), (7, 2 * BLOCK_STEPS + 3 - 1000)]
