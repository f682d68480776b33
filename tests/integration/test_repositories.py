"""The SQL repositories and unit of work, the same suite on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ptw.domain.errors import Conflict, NotFound
from ptw.domain.metrics import MetricBatch, MetricPoint
from ptw.domain.optimizations import (
    Optimization,
    OptimizationKind,
    OptimizationResult,
    OptimizationStatus,
    ResultState,
)
from ptw.domain.ports import MAX_PAGE_SIZE, PageRequest
from ptw.domain.runs import Checkpoint, Run, RunQuery, RunStatus
from ptw.domain.tenancy import ApiKey, Membership, Project, Role
from ptw.domain.workflows import Resources, Workflow
from ptw.infra.db import Database
from ptw.infra.db.metric_blocks import BLOCK_STEPS
from ptw.infra.db.models import Base
from ptw.infra.db.unit_of_work import SqlUnitOfWork

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def point(key: str, step: int, value: float) -> MetricPoint:
    return MetricPoint(key=key, step=step, value=value, timestamp=at(step))


async def stored(
    uow: SqlUnitOfWork, run_id: str, key: str, after_step: int | None = None
) -> list[MetricPoint]:
    """Every stored point of a key (a whole read)."""
    return (await uow.metrics.read(run_id, key, None, after_step)).points


async def seed(uow_factory: SqlUnitOfWork.Factory) -> tuple[Project, Workflow]:
    """A project with one workflow of its own."""
    project = Project(new_id(), f"project-{new_id()[:8]}", at(0))
    workflow = Workflow(new_id(), "train", "pkg.mod:main", project.id, {"type": "object"}, {"lr": 0.1})
    async with uow_factory() as uow:
        await uow.projects.add(project)
        await uow.workflows.add(workflow)
        await uow.commit()
    return project, workflow


def a_run(project: Project, workflow: Workflow, created: float = 0, **fields: object) -> Run:
    return Run(new_id(), project.id, workflow.id, {"lr": 0.1}, at(created), **fields)  # type: ignore[arg-type]


async def add_runs(uow_factory: SqlUnitOfWork.Factory, *runs: Run) -> None:
    async with uow_factory() as uow:
        for run in runs:
            await uow.runs.add(run)
        await uow.commit()


async def test_migrations_match_the_models(database: Database) -> None:
    async with database.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == []


async def test_upgrade_twice_is_harmless_and_ping_answers(database: Database) -> None:
    await database.upgrade()
    assert await database.ping()


async def test_leaving_without_commit_rolls_back(uow_factory: SqlUnitOfWork.Factory) -> None:
    kept, dropped, failed = (Project(new_id(), name, at(0)) for name in ("kept", "dropped", "failed"))
    async with uow_factory() as uow:
        await uow.projects.add(kept)
        await uow.commit()
    async with uow_factory() as uow:
        await uow.projects.add(dropped)
    with pytest.raises(RuntimeError):
        async with uow_factory() as uow:
            await uow.projects.add(failed)
            raise RuntimeError("boom")
    async with uow_factory() as uow:
        assert await uow.projects.get(kept.id) == kept
        assert await uow.projects.get(dropped.id) is None
        assert await uow.projects.get(failed.id) is None


async def test_projects(uow_factory: SqlUnitOfWork.Factory) -> None:
    a, b = Project(new_id(), "alpha", at(1)), Project(new_id(), "beta", at(2))
    async with uow_factory() as uow:
        await uow.projects.add(a)
        await uow.projects.add(b)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.projects.get(a.id) == a
        assert await uow.projects.get_by_name("beta") == b
        assert await uow.projects.get_by_name("gamma") is None
        assert await uow.projects.get("not-an-id") is None
        found = await uow.projects.get_many([a.id, b.id, new_id()])
        assert sorted(p.id for p in found) == sorted([a.id, b.id])
        assert await uow.projects.get_many([]) == []
    async with uow_factory() as uow:
        with pytest.raises(Conflict):
            await uow.projects.add(Project(new_id(), "alpha", at(3)))


async def test_timezones_round_trip_as_utc(uow_factory: SqlUnitOfWork.Factory) -> None:
    local = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5)))
    project = Project(new_id(), "tz", local)
    async with uow_factory() as uow:
        await uow.projects.add(project)
        await uow.commit()
    async with uow_factory() as uow:
        stored = await uow.projects.get(project.id)
    assert stored is not None
    assert stored.created_at == local
    assert stored.created_at.tzinfo == UTC
    assert stored.created_at.hour == 7


async def test_api_keys_and_memberships(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, _ = await seed(uow_factory)
    key = ApiKey(new_id(), "abc123abc123", "hash", "ci", at(0))
    async with uow_factory() as uow:
        await uow.api_keys.add(key)
        await uow.api_keys.add_membership(Membership(key.id, project.id, Role.VIEWER))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.api_keys.get(key.id) == key
        assert await uow.api_keys.get_for_auth("abc123abc123") == (
            key,
            [Membership(key.id, project.id, Role.VIEWER)],
        )
        assert await uow.api_keys.get_for_auth("nope") is None
        key.revoked_at, key.last_used_at = at(10), at(9)
        await uow.api_keys.update(key)
        await uow.api_keys.add_membership(Membership(key.id, project.id, Role.ADMIN))  # a new grant replaces
        await uow.commit()
    async with uow_factory() as uow:
        stored = await uow.api_keys.get(key.id)
        assert stored is not None and stored.revoked and stored.last_used_at == at(9)
        assert await uow.api_keys.memberships(key.id) == [Membership(key.id, project.id, Role.ADMIN)]
        with pytest.raises(Conflict):
            await uow.api_keys.add(ApiKey(new_id(), "abc123abc123", "other", None, at(1)))


async def test_workflows(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, own = await seed(uow_factory)
    _, theirs = await seed(uow_factory)
    builtin = Workflow(new_id(), "train", "ptw.builtin:train", None, created_at=at(0))
    async with uow_factory() as uow:
        await uow.workflows.add(builtin)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.workflows.get(own.id) == own
        assert await uow.workflows.get_by_name("train", project.id) == own
        assert await uow.workflows.get_by_name("train", None) == builtin
        assert await uow.workflows.get_by_name("missing", None) is None
        assert {w.id for w in await uow.workflows.get_many([own.id, builtin.id])} == {own.id, builtin.id}
        own.entrypoint, own.resources = "pkg.mod:other", Resources(gpus=2, timeout_seconds=60)
        await uow.workflows.update(own)
        await uow.commit()
    async with uow_factory() as uow:
        stored = await uow.workflows.get(own.id)
        assert stored is not None and stored.entrypoint == "pkg.mod:other" and stored.resources.gpus == 2
        page = await uow.workflows.find([project.id], PageRequest(first=10))
        assert {w.id for w in page.items} == {own.id, builtin.id}  # not the other project's
        assert not page.has_next
        assert theirs.id not in {w.id for w in page.items}


async def test_builtin_workflow_names_are_unique(uow_factory: SqlUnitOfWork.Factory) -> None:
    async with uow_factory() as uow:
        await uow.workflows.add(Workflow(new_id(), "mnist", "ptw.builtin:mnist", None))
        await uow.commit()
    async with uow_factory() as uow:
        with pytest.raises(Conflict):
            await uow.workflows.add(Workflow(new_id(), "mnist", "ptw.builtin:other", None))


async def test_workflow_names_are_unique_per_project(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, _ = await seed(uow_factory)
    other, _ = await seed(uow_factory)
    async with uow_factory() as uow:
        await uow.workflows.add(Workflow(new_id(), "train", "ptw.builtin:train", None))  # beside a project's
        await uow.commit()
    async with uow_factory() as uow:
        with pytest.raises(Conflict):
            await uow.workflows.add(Workflow(new_id(), "train", "pkg.mod:x", project.id))
    async with uow_factory() as uow:
        assert await uow.workflows.get_by_name("train", other.id) is not None


async def test_workflow_pages_by_name_then_id(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, _ = await seed(uow_factory)  # its workflow is "train"
    async with uow_factory() as uow:
        for name in ("b", "a", "d", "c"):
            owner = None if name < "c" else project.id
            await uow.workflows.add(Workflow(new_id(), name, "pkg.mod:main", owner))
        await uow.commit()
    seen, after, pages = [], None, 0
    while True:
        async with uow_factory() as uow:
            page = await uow.workflows.find([project.id], PageRequest(first=2, after=after))
        seen += [w.name for w in page.items]
        pages += 1
        if not page.has_next:
            break
        after = page.items[-1].id
    assert seen == ["a", "b", "c", "d", "train"]
    assert pages == 3


async def test_runs_crud_and_idempotency_key(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    run = a_run(project, workflow, idempotency_key="once", summary=None)
    other = a_run(project, workflow, 1)
    await add_runs(uow_factory, run, other)
    async with uow_factory() as uow:
        assert await uow.runs.get(run.id) == run
        assert await uow.runs.get_by_idempotency_key(project.id, "once") == run
        assert await uow.runs.get_by_idempotency_key(project.id, "twice") is None
        assert {r.id for r in await uow.runs.get_many([run.id, other.id, new_id()])} == {run.id, other.id}
        run.transition(RunStatus.STARTING, at(5))
        run.transition(RunStatus.RUNNING, at(6))
        run.executor, run.device, run.summary = "exec-1", "cpu", {"loss": 0.5, "nested": [1, 2]}
        await uow.runs.update(run)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.runs.get(run.id) == run
        assert [r.id for r in await uow.runs.with_status([RunStatus.RUNNING])] == [run.id]
        assert [r.id for r in await uow.runs.with_status([RunStatus.QUEUED, RunStatus.RUNNING])] == [
            run.id,
            other.id,
        ]
    async with uow_factory() as uow:
        with pytest.raises(Conflict):
            await uow.runs.add(a_run(project, workflow, 2, idempotency_key="once"))


async def test_run_pages_newest_first_by_created_at_then_id(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    other, theirs = await seed(uow_factory)
    runs = [a_run(project, workflow, t) for t in (3, 1, 2, 2, 2, 0)]  # ties broken by id
    await add_runs(uow_factory, *runs, a_run(other, theirs, 9))
    newest = sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)
    query = RunQuery(project_ids=(project.id,))
    for first, newest_first in ((2, True), (4, False), (1, True)):
        query = RunQuery(project_ids=(project.id,), newest_first=newest_first)
        seen, after = [], None
        while True:
            async with uow_factory() as uow:
                page = await uow.runs.find(query, PageRequest(first=first, after=after))
            assert len(page.items) == first or not page.has_next
            seen += [r.id for r in page.items]
            if not page.has_next:
                break
            after = page.items[-1].id
        expected = [r.id for r in newest] if newest_first else [r.id for r in reversed(newest)]
        assert seen == expected


async def test_run_filters_and_page_size_clamp(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    queued = [a_run(project, workflow, t) for t in range(3)]
    failed = a_run(project, workflow, 10, status=RunStatus.FAILED)
    await add_runs(uow_factory, *queued, failed)
    async with uow_factory() as uow:
        by_status = await uow.runs.find(
            RunQuery((project.id,), statuses=(RunStatus.FAILED,)), PageRequest(first=MAX_PAGE_SIZE * 5)
        )
        assert [r.id for r in by_status.items] == [failed.id]
        one = await uow.runs.find(RunQuery((project.id,), workflow_id=workflow.id), PageRequest(first=0))
        assert [r.id for r in one.items] == [failed.id] and one.has_next
        assert (await uow.runs.find(RunQuery((project.id,), workflow_id=new_id()), PageRequest())).items == []
        assert (await uow.runs.find(RunQuery(()), PageRequest())).items == []


async def test_runs_of_an_optimization(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    kind = OptimizationKind.HYPERPARAMETER_SEARCH
    optimization = Optimization(new_id(), project.id, workflow.id, kind, at(0))
    async with uow_factory() as uow:
        await uow.optimizations.add(optimization)
        await uow.commit()
    trial = a_run(project, workflow, 1, optimization_id=optimization.id)
    await add_runs(uow_factory, trial, a_run(project, workflow, 2))
    async with uow_factory() as uow:
        page = await uow.runs.find(RunQuery((project.id,), optimization_id=optimization.id), PageRequest())
    assert [r.id for r in page.items] == [trial.id]


async def test_get_for_update_holds_the_run_until_commit(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    run = a_run(project, workflow)
    await add_runs(uow_factory, run)

    async def second_reader() -> Run | None:
        async with uow_factory() as uow:
            return await uow.runs.get(run.id, for_update=True)

    async with uow_factory() as uow:
        locked = await uow.runs.get(run.id, for_update=True)
        assert locked is not None
        waiting = asyncio.create_task(second_reader())
        await asyncio.sleep(0.5)
        assert not waiting.done()
        locked.transition(RunStatus.CANCELLED, at(1))
        await uow.runs.update(locked)
        await uow.commit()
    seen = await asyncio.wait_for(waiting, 10)
    assert seen is not None and seen.status is RunStatus.CANCELLED


async def test_next_metric_seq_increments_and_merges_keys(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    run = a_run(project, workflow)
    await add_runs(uow_factory, run)
    async with uow_factory() as uow:
        assert await uow.runs.next_metric_seq(run.id, ["loss", "acc"]) == 1
        assert await uow.runs.next_metric_seq(run.id, []) == 2
        assert await uow.runs.next_metric_seq(run.id, ["lr", "loss", "lr"]) == 3
        await uow.commit()
        with pytest.raises(NotFound):
            await uow.runs.next_metric_seq(new_id(), ["x"])
    async with uow_factory() as uow:
        stale = await uow.runs.get(run.id)
        assert stale is not None and stale.metric_seq == 3 and stale.metric_keys == ["acc", "loss", "lr"]
        assert await uow.runs.next_metric_seq(run.id, ["b"]) == 4
        stale.transition(RunStatus.CANCELLED, at(1))
        await uow.runs.update(stale)  # must not move the sequence back
        await uow.commit()
    async with uow_factory() as uow:
        stored = await uow.runs.get(run.id)
    assert stored is not None and stored.status is RunStatus.CANCELLED
    assert stored.metric_seq == 4 and stored.metric_keys == ["acc", "b", "loss", "lr"]


async def test_concurrent_writers_get_distinct_seqs(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    run = a_run(project, workflow)
    await add_runs(uow_factory, run)

    async def record(i: int) -> int:
        async with uow_factory() as uow:
            seq = await uow.runs.next_metric_seq(run.id, [f"k{i % 3}"])
            await uow.metrics.add_batch(
                MetricBatch.of_points(run.id, seq, (point(f"k{i % 3}", i, float(i)),))
            )
            await uow.commit()
            return seq

    seqs = await asyncio.gather(*(record(i) for i in range(12)))
    assert sorted(seqs) == list(range(1, 13))
    async with uow_factory() as uow:
        stored = await uow.runs.get(run.id)
    assert stored is not None and stored.metric_seq == 12 and stored.metric_keys == ["k0", "k1", "k2"]


async def test_metric_upsert_keeps_one_point_with_the_newest(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    run = a_run(project, workflow)
    await add_runs(uow_factory, run)
    async with uow_factory() as uow:
        await uow.metrics.add_batch(
            MetricBatch.of_points(run.id, 1, (point("loss", 0, 1.0), point("loss", 1, 2.0)))
        )
        await uow.metrics.add_batch(
            MetricBatch.of_points(run.id, 2, (point("loss", 1, 5.0), point("loss", 1, 6.0)))
        )
        await uow.metrics.add_batch(MetricBatch.of_points(run.id, 3, ()))
        await uow.commit()
    async with uow_factory() as uow:
        assert await stored(uow, run.id, "loss") == [point("loss", 0, 1.0), point("loss", 1, 6.0)]
        assert await uow.metrics.count(run.id, "loss") == 2
        batches = await uow.metrics.batches_after(run.id, 0)
    assert [(b.seq, [p.step for p in b.points()]) for b in batches] == [(1, [0]), (2, [1])]


async def test_series_and_count_after_a_step(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    run = a_run(project, workflow)
    await add_runs(uow_factory, run)
    async with uow_factory() as uow:
        pts = (*(point("loss", s, s / 10) for s in range(10)), point("acc", 3, 0.9))
        await uow.metrics.add_batch(MetricBatch.of_points(run.id, 1, pts))
        await uow.commit()
    async with uow_factory() as uow:
        assert [p.step for p in await stored(uow, run.id, "loss", after_step=6)] == [7, 8, 9]
        assert (await uow.metrics.read(run.id, "loss", 3, after_step=6)).steps.tolist() == [7, 8, 9]
        assert await uow.metrics.count(run.id, "loss", after_step=6) == 3
        assert await uow.metrics.count(run.id, "nope") == 0
        acc = await stored(uow, run.id, "acc")
    assert acc == [point("acc", 3, 0.9)] and acc[0].timestamp.tzinfo == UTC


async def test_large_batches_upsert_and_roll_back(uow_factory: SqlUnitOfWork.Factory) -> None:
    """Batches over several blocks, merged twice in one transaction, then one rolled back."""
    project, workflow = await seed(uow_factory)
    run = a_run(project, workflow)
    await add_runs(uow_factory, run)
    n = 2 * BLOCK_STEPS + 500
    async with uow_factory() as uow:
        await uow.metrics.add_batch(
            MetricBatch.of_points(run.id, 1, tuple(point("loss", s, 1.0) for s in range(n)))
        )
        overlap = tuple(point("loss", s, 2.0) for s in range(n - 100, 2 * n))
        await uow.metrics.add_batch(MetricBatch.of_points(run.id, 2, overlap))
        await uow.commit()
    async with uow_factory() as uow:
        dropped = tuple(point("loss", s, 3.0) for s in range(3 * n))
        await uow.metrics.add_batch(MetricBatch.of_points(run.id, 3, dropped))
    async with uow_factory() as uow:
        assert await uow.metrics.count(run.id, "loss") == 2 * n
        series = await stored(uow, run.id, "loss")
        batches = await uow.metrics.batches_after(run.id, 1)
    assert [p.value for p in series] == [1.0] * (n - 100) + [2.0] * (n + 100)
    assert [(b.seq, len(b)) for b in batches] == [(2, n + 100)]


async def test_latest_is_one_statement_for_many_runs(database: Database) -> None:
    uow_factory = database.uow_factory()
    project, workflow = await seed(uow_factory)
    runs = [a_run(project, workflow, t) for t in range(6)]
    silent = a_run(project, workflow, 10)
    await add_runs(uow_factory, *runs, silent)
    async with uow_factory() as uow:
        for i, run in enumerate(runs):
            await uow.runs.next_metric_seq(run.id, ["acc", "loss", "unseen"])  # a key with no point yet
            pts = [point("loss", s, 10.0 * i + s) for s in (5, 1, 3)] + [point("acc", 2, 0.5 + i)]
            await uow.metrics.add_batch(MetricBatch.of_points(run.id, 1, tuple(pts)))
        await uow.commit()
    ids = [r.id for r in runs] + [silent.id, new_id()]
    async with uow_factory() as uow:
        before = database.statements
        latest = await uow.metrics.latest(ids)
        assert database.statements - before == 1
    assert set(latest) == set(ids)
    assert latest[silent.id] == [] and latest[ids[-1]] == []
    for i, run in enumerate(runs):
        assert latest[run.id] == [point("acc", 2, 0.5 + i), point("loss", 5, 10.0 * i + 5)]


async def test_batches_after_groups_by_seq_and_filters_keys(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    run, other = a_run(project, workflow), a_run(project, workflow, 1)
    await add_runs(uow_factory, run, other)
    async with uow_factory() as uow:
        await uow.metrics.add_batch(
            MetricBatch.of_points(run.id, 1, (point("loss", 0, 1.0), point("acc", 0, 0.1)))
        )
        await uow.metrics.add_batch(
            MetricBatch.of_points(run.id, 2, (point("loss", 1, 0.9), point("acc", 1, 0.2)))
        )
        await uow.metrics.add_batch(MetricBatch.of_points(run.id, 3, (point("acc", 2, 0.3),)))
        await uow.metrics.add_batch(MetricBatch.of_points(other.id, 4, (point("loss", 0, 7.0),)))
        await uow.commit()
    async with uow_factory() as uow:
        everything = await uow.metrics.batches_after(run.id, 0)
        after_one = await uow.metrics.batches_after(run.id, 1)
        losses = await uow.metrics.batches_after(run.id, 0, ["loss"])
        assert await uow.metrics.batches_after(run.id, 3) == []
    assert everything[0] == MetricBatch.of_points(run.id, 1, (point("acc", 0, 0.1), point("loss", 0, 1.0)))
    assert [b.seq for b in everything] == [1, 2, 3]
    assert [(b.seq, len(b)) for b in after_one] == [(2, 2), (3, 1)]
    assert losses == [
        MetricBatch.of_points(run.id, 1, (point("loss", 0, 1.0),)),
        MetricBatch.of_points(run.id, 2, (point("loss", 1, 0.9),)),
    ]


async def test_checkpoints(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    run = a_run(project, workflow)
    await add_runs(uow_factory, run)
    first = Checkpoint(new_id(), run.id, 1, 100, "file:///c/1.pt", 2**33, at(1))
    second = Checkpoint(new_id(), run.id, 2, None, "file:///c/2.pt", 10, at(2))
    async with uow_factory() as uow:
        assert await uow.checkpoints.latest(run.id) is None
        await uow.checkpoints.add(second)
        await uow.checkpoints.add(first)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.checkpoints.for_run(run.id) == [first, second]
        assert await uow.checkpoints.latest(run.id) == second


async def test_optimizations_and_results(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, workflow = await seed(uow_factory)
    older = Optimization(new_id(), project.id, workflow.id, OptimizationKind.PERFORMANCE_TUNING, at(0))
    newer = Optimization(
        new_id(), project.id, workflow.id, OptimizationKind.HYPERPARAMETER_SEARCH, at(1),
        objective="loss", space={"lr": {"low": 0.001, "high": 0.1, "log": True}}, max_trials=8,
    )  # fmt: skip
    run = a_run(project, workflow)
    await add_runs(uow_factory, run)
    results = [OptimizationResult(new_id(), newer.id, {"lr": 0.01 * i}, at(i)) for i in range(3)]
    async with uow_factory() as uow:
        await uow.optimizations.add(older)
        await uow.optimizations.add(newer)
        for result in results:
            await uow.optimizations.add_result(result)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.optimizations.get(newer.id) == newer
        newer.status, newer.finished_at = OptimizationStatus.SUCCEEDED, at(9)
        await uow.optimizations.update(newer)
        results[1].state, results[1].value, results[1].run_id = ResultState.COMPLETE, 0.25, run.id
        results[1].metrics = {"loss": 0.25}
        await uow.optimizations.update_result(results[1])
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.optimizations.get(newer.id) == newer
        page = await uow.optimizations.find([project.id], PageRequest(first=1))
        assert [o.id for o in page.items] == [newer.id] and page.has_next
        page = await uow.optimizations.find([project.id], PageRequest(first=1, after=newer.id))
        assert [o.id for o in page.items] == [older.id] and not page.has_next
        assert (await uow.optimizations.find([new_id()], PageRequest())).items == []
        trials = await uow.optimizations.results(newer.id, PageRequest(first=2))
        assert trials.items == results[:2] and trials.has_next
        rest = await uow.optimizations.results(newer.id, PageRequest(first=2, after=results[1].id))
        assert rest.items == results[2:] and not rest.has_next
        assert await uow.optimizations.result_for_run(run.id) == results[1]
        assert await uow.optimizations.result_for_run(new_id()) is None


async def test_run_labels_round_trip_and_short_ids_resolve_within_projects(
    uow_factory: SqlUnitOfWork.Factory,
) -> None:
    project, workflow = await seed(uow_factory)
    other_project, other_workflow = await seed(uow_factory)
    run = a_run(project, workflow, name="resnet-3", tags=["baseline", "gpu"], notes="first try")
    plain = a_run(project, workflow, 1)
    hidden = a_run(other_project, other_workflow, 2)
    await add_runs(uow_factory, run, plain, hidden)
    async with uow_factory() as uow:
        stored = await uow.runs.get(run.id)
        assert stored is not None and (stored.name, stored.tags, stored.notes) == (
            "resnet-3",
            ["baseline", "gpu"],
            "first try",
        )
        stored_plain = await uow.runs.get(plain.id)
        assert stored_plain is not None and stored_plain.name == plain.name and stored_plain.name
        assert await uow.runs.ids_with_prefix([project.id], run.id[:8], 2) == [run.id]
        assert await uow.runs.ids_with_prefix([project.id], hidden.id[:8], 2) == []
        assert await uow.runs.ids_with_prefix([other_project.id], hidden.id, 2) == [hidden.id]
        both = await uow.runs.ids_with_prefix([project.id], "", 5)
        assert sorted(both) == sorted([run.id, plain.id])
