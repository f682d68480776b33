"""Run lists filtered by tag, status, workflow, a param's value and a metric's latest value, and ordered by
creation or by a metric, on SQLite and PostgreSQL (one statement a page)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ptw.domain.metrics import MetricBatch, MetricPoint
from ptw.domain.ports import PageRequest
from ptw.domain.runs import MetricCondition, Run, RunQuery, RunStatus
from ptw.domain.tenancy import Project
from ptw.domain.workflows import Workflow
from ptw.infra.db.unit_of_work import SqlUnitOfWork

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def seed(uow_factory: SqlUnitOfWork.Factory) -> tuple[Project, Workflow, Workflow, list[Run]]:
    """Six runs, n = 0..5: tags, params {lr, opt, flag} and a latest ``acc`` (runs 0-4) that differ."""
    project = Project(str(uuid.uuid4()), f"p-{uuid.uuid4().hex[:8]}", T0)
    train = Workflow(str(uuid.uuid4()), "train", "pkg.mod:main", project.id, {"type": "object"}, {})
    other = Workflow(str(uuid.uuid4()), "other", "pkg.mod:other", project.id, {"type": "object"}, {})
    runs = []
    for n in range(6):
        params: dict[str, Any] = {
            "lr": [0.1, 0.01, 0.001][n % 3],
            "opt": "adam" if n < 3 else "sgd",
            "flag": n == 4,
        }
        runs.append(
            Run(
                str(uuid.uuid4()),
                project.id,
                (train if n != 5 else other).id,
                params,
                T0 + timedelta(seconds=n),
                status=RunStatus.SUCCEEDED if n % 2 else RunStatus.FAILED,
                tags=["base", *(["best"] if n in (1, 3) else [])],
            )
        )
    async with uow_factory() as uow:
        await uow.projects.add(project)
        await uow.workflows.add(train)
        await uow.workflows.add(other)
        for run in runs:
            await uow.runs.add(run)
        for n, run in enumerate(runs[:5]):
            # The latest (highest step) value counts: an earlier point of each run says otherwise.
            points = [
                MetricPoint("acc", 0, 99.0, T0),
                MetricPoint("acc", 5, [0.5, 0.9, 0.7, 0.8, 0.6][n], T0),
            ]
            await uow.metrics.add_batch(MetricBatch.of_points(run.id, 1, points))
        await uow.commit()
    return project, train, other, runs


async def found(
    uow_factory: SqlUnitOfWork.Factory, query: RunQuery, runs: list[Run], first: int = 50
) -> list[int]:
    """The runs' numbers, page after page."""
    numbers, after = [], None
    number = {r.id: n for n, r in enumerate(runs)}
    while True:
        async with uow_factory() as uow:
            page = await uow.runs.find(query, PageRequest(first=first, after=after))
        numbers += [number[r.id] for r in page.items]
        if not page.has_next:
            return numbers
        after = page.items[-1].id


async def test_filters_combine(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, _, other, runs = await seed(uow_factory)
    base = RunQuery(project_ids=(project.id,))

    def q(**fields: Any) -> RunQuery:
        return RunQuery(**{**base.__dict__, **fields})

    assert await found(uow_factory, q(), runs) == [5, 4, 3, 2, 1, 0]
    assert await found(uow_factory, q(tags=("best",)), runs) == [3, 1]
    assert await found(uow_factory, q(tags=("best", "base")), runs) == [3, 1]
    assert await found(uow_factory, q(tags=("nope",)), runs) == []
    assert await found(uow_factory, q(statuses=(RunStatus.SUCCEEDED,), tags=("base",)), runs) == [5, 3, 1]
    assert await found(uow_factory, q(workflow_id=other.id), runs) == [5]
    assert await found(uow_factory, q(params=(("lr", 0.01),)), runs) == [4, 1]
    assert await found(uow_factory, q(params=(("lr", 0.01), ("opt", "sgd"))), runs) == [4]
    assert await found(uow_factory, q(params=(("opt", "adam"),)), runs) == [2, 1, 0]
    assert await found(uow_factory, q(params=(("flag", True),)), runs) == [4]
    assert await found(uow_factory, q(params=(("flag", False),)), runs) == [5, 3, 2, 1, 0]
    at_least = MetricCondition("acc", "GTE", 0.7)
    assert await found(uow_factory, q(metrics=(at_least,)), runs) == [3, 2, 1]  # 99.0 is not the latest
    below = MetricCondition("acc", "LT", 0.8)
    assert await found(uow_factory, q(metrics=(at_least, below)), runs) == [2]
    assert await found(uow_factory, q(metrics=(MetricCondition("loss", "GT", 0.0),)), runs) == []
    assert await found(uow_factory, q(newest_first=False, tags=("base",)), runs) == [0, 1, 2, 3, 4, 5]


async def test_ordered_by_a_metric_in_pages(uow_factory: SqlUnitOfWork.Factory) -> None:
    project, _, _, runs = await seed(uow_factory)
    by_acc = RunQuery(project_ids=(project.id,), order_metric="acc")
    # acc by run: 0.5 0.9 0.7 0.8 0.6; run 5 has none and is left out.
    assert await found(uow_factory, by_acc, runs) == [1, 3, 2, 4, 0]
    assert await found(uow_factory, by_acc, runs, first=2) == [1, 3, 2, 4, 0]
    lowest = RunQuery(project_ids=(project.id,), order_metric="acc", newest_first=False)
    assert await found(uow_factory, lowest, runs, first=1) == [0, 4, 2, 3, 1]
    tagged = RunQuery(project_ids=(project.id,), order_metric="acc", tags=("best",))
    assert await found(uow_factory, tagged, runs) == [1, 3]
