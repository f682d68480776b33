"""The in-memory fakes keep the contracts of the ports they stand for, or the unit tests prove nothing."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ptw.domain import ports
from ptw.domain.metrics import MetricBatch, MetricPoint
from ptw.domain.ports import PageRequest
from ptw.domain.runs import Run, RunJob, RunQuery
from tests.fixtures.memory import (
    DuplicateKey,
    FakeEventBus,
    FakeExecutorRegistry,
    FakeJobQueue,
    FakeUnitOfWork,
    MemoryDatabase,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DB = MemoryDatabase()
UOW = DB()
FAKES: list[tuple[type[Any], object]] = [
    (ports.ProjectRepository, UOW.projects),
    (ports.ApiKeyRepository, UOW.api_keys),
    (ports.WorkflowRepository, UOW.workflows),
    (ports.RunRepository, UOW.runs),
    (ports.MetricRepository, UOW.metrics),
    (ports.CheckpointRepository, UOW.checkpoints),
    (ports.OptimizationRepository, UOW.optimizations),
    (ports.UnitOfWork, UOW),
    (ports.EventBus, FakeEventBus()),
    (ports.JobQueue, FakeJobQueue()),
    (ports.ExecutorRegistry, FakeExecutorRegistry()),
]


@pytest.mark.parametrize(("port", "fake"), FAKES, ids=lambda x: getattr(x, "__name__", ""))
def test_fake_has_every_method_of_its_port_with_the_same_parameters(port: type[Any], fake: object) -> None:
    for name, member in vars(port).items():
        if name.startswith("_") and name not in ("__aenter__", "__aexit__"):
            continue
        if callable(member):
            expected = list(inspect.signature(member).parameters)[1:]
            assert list(inspect.signature(getattr(fake, name)).parameters) == expected, name


def run(ident: str, minutes: int, project: str = "p1") -> Run:
    return Run(ident, project, "w1", {}, created_at=T0 + timedelta(minutes=minutes))


async def test_leaving_without_commit_rolls_back_and_reads_are_copies() -> None:
    db = MemoryDatabase()
    async with db() as uow:
        await uow.runs.add(run("r1", 0))
    assert db.state.runs == {} and db.rollbacks == 1
    async with db() as uow:
        await uow.runs.add(run("r1", 0))
        await uow.commit()
    async with db() as uow:
        loaded = await uow.runs.get("r1")
        assert loaded is not None
        loaded.error = "mutated but never updated"
        await uow.commit()
    assert db.state.runs["r1"].error is None


async def test_outside_async_with_a_unit_of_work_refuses_to_work() -> None:
    with pytest.raises(RuntimeError):
        await FakeUnitOfWork(MemoryDatabase()).runs.get("r1")


async def test_run_pages_follow_the_keyset_of_the_cursor() -> None:
    db = MemoryDatabase()
    async with db() as uow:
        for i in range(5):
            await uow.runs.add(run(f"r{i}", i))
        await uow.runs.add(run("elsewhere", 9, project="p2"))
        query = RunQuery(project_ids=("p1",))
        page = await uow.runs.find(query, PageRequest(first=2, after="r3"))
        assert ([r.id for r in page.items], page.has_next) == (["r2", "r1"], True)
        page = await uow.runs.find(query, PageRequest(first=2, after="elsewhere"))  # cursor outside filter
        assert [r.id for r in page.items] == ["r4", "r3"]
        oldest = RunQuery(project_ids=("p1",), newest_first=False)
        page = await uow.runs.find(oldest, PageRequest(first=10, after="r3"))
        assert ([r.id for r in page.items], page.has_next) == (["r4"], False)
        assert (await uow.runs.find(query, PageRequest(after="gone"))).items == []


async def test_unique_constraints_and_metric_upsert() -> None:
    db = MemoryDatabase()
    async with db() as uow:
        await uow.runs.add(run("r1", 0))
        with pytest.raises(DuplicateKey):
            await uow.runs.add(run("r1", 1))
        assert await uow.runs.next_metric_seq("r1", ["loss", "acc"]) == 1
        assert await uow.runs.next_metric_seq("r1", ["loss"]) == 2
        assert (await uow.runs.get("r1")).metric_keys == ["loss", "acc"]  # type: ignore[union-attr]
        await uow.metrics.add_batch(MetricBatch.of_points("r1", 1, (MetricPoint("loss", 0, 1.0, T0),)))
        await uow.metrics.add_batch(MetricBatch.of_points("r1", 2, (MetricPoint("loss", 0, 2.0, T0),)))
        assert [p.value for p in await uow.metrics.series("r1", "loss")] == [2.0]
        assert [b.seq for b in await uow.metrics.batches_after("r1", 0)] == [2]


async def test_job_queue_is_idempotent_per_attempt() -> None:
    queue = FakeJobQueue()
    job = RunJob("r1", "p1", 1, "pkg:main", {}, "cpu", None)
    await queue.enqueue(job)
    await queue.enqueue(job)
    await queue.enqueue(RunJob("r1", "p1", 2, "pkg:main", {}, "cpu", None))
    assert (queue.calls, len(queue.jobs), await queue.depth()) == (3, 2, {"cpu": 2})
