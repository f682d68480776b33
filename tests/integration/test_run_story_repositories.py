"""A run's story in the repositories, on SQLite and PostgreSQL: output lines in seq order, attempts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ptw.domain.run_story import AttemptOutcome, RunAttempt, RunLogLine
from ptw.domain.runs import Run
from ptw.domain.tenancy import Project
from ptw.domain.workflows import Workflow
from ptw.infra.db.unit_of_work import SqlUnitOfWork

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def a_run(uow_factory: SqlUnitOfWork.Factory) -> Run:
    project = Project(str(uuid.uuid4()), f"project-{uuid.uuid4().hex[:8]}", T0)
    workflow = Workflow(str(uuid.uuid4()), "train", "pkg.mod:main", project.id, {"type": "object"}, {})
    run = Run(str(uuid.uuid4()), project.id, workflow.id, {}, T0)
    async with uow_factory() as uow:
        await uow.projects.add(project)
        await uow.workflows.add(workflow)
        await uow.runs.add(run)
        await uow.commit()
    return run


async def test_output_lines_page_in_seq_order(uow_factory: SqlUnitOfWork.Factory) -> None:
    run, other = await a_run(uow_factory), await a_run(uow_factory)
    lines = [
        RunLogLine(run.id, seq, "stdout", f"line {seq} ✓", T0 + timedelta(seconds=seq)) for seq in (3, 1, 2)
    ]
    async with uow_factory() as uow:
        assert await uow.run_logs.last_seq(run.id) == 0
        await uow.run_logs.add(lines)
        await uow.run_logs.add([RunLogLine(other.id, 1, "system", "elsewhere", T0)])
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.run_logs.last_seq(run.id) == 3
        assert [x.seq for x in await uow.run_logs.page(run.id, 0, 10)] == [1, 2, 3]
        assert await uow.run_logs.page(run.id, 1, 1) == [sorted(lines, key=lambda x: x.seq)[1]]
        assert await uow.run_logs.page(run.id, 3, 10) == []


async def test_attempts_are_upserted_and_listed_per_run(uow_factory: SqlUnitOfWork.Factory) -> None:
    run, other = await a_run(uow_factory), await a_run(uow_factory)
    first = RunAttempt(run.id, 1, T0, executor="exec-1")
    async with uow_factory() as uow:
        await uow.attempts.put(first)
        await uow.attempts.put(RunAttempt(other.id, 1, T0))
        await uow.commit()
    ended = first.ended(AttemptOutcome.CRASHED, "killed by SIGKILL", T0 + timedelta(seconds=5))
    second = RunAttempt(run.id, 2, T0 + timedelta(seconds=6), executor="exec-2", device="cpu")
    async with uow_factory() as uow:
        await uow.attempts.put(ended)
        await uow.attempts.put(second)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.attempts.get(run.id, 1) == ended
        assert await uow.attempts.get(run.id, 3) is None
        found = await uow.attempts.for_runs([run.id, other.id, str(uuid.uuid4())])
        assert found[run.id] == [ended, second] and len(found[other.id]) == 1 and len(found) == 2
        assert await uow.attempts.for_runs([]) == {}


@pytest.mark.parametrize("outcome", list(AttemptOutcome))
async def test_every_outcome_round_trips(uow_factory: SqlUnitOfWork.Factory, outcome: AttemptOutcome) -> None:
    run = await a_run(uow_factory)
    attempt = RunAttempt(run.id, 1, T0).ended(outcome, None, T0)
    async with uow_factory() as uow:
        await uow.attempts.put(attempt)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.attempts.get(run.id, 1) == attempt


async def test_an_attempt_keeps_its_first_end_and_is_stored_whole_when_never_begun(
    uow_factory: SqlUnitOfWork.Factory,
) -> None:
    run = await a_run(uow_factory)
    begun = RunAttempt(run.id, 1, T0, executor="exec-1")
    never_begun = RunAttempt(run.id, 2, T0 + timedelta(seconds=9), executor="exec-2", device="cpu")
    first_end = begun.ended(AttemptOutcome.CRASHED, "killed by SIGKILL", T0 + timedelta(seconds=5))
    async with uow_factory() as uow:
        await uow.attempts.put(begun)
        await uow.attempts.set_device(run.id, 1, "cuda:0")
        await uow.attempts.set_device(run.id, 3, "cpu")  # no such attempt: nothing
        await uow.attempts.end(first_end)
        # a later end of the same attempt (with other start fields) changes nothing
        later = RunAttempt(run.id, 1, T0 + timedelta(seconds=1), executor="elsewhere")
        await uow.attempts.end(later.ended(AttemptOutcome.SUCCEEDED, None, T0 + timedelta(seconds=7)))
        await uow.attempts.end(
            never_begun.ended(AttemptOutcome.CANCELLED, "cancelled", T0 + timedelta(seconds=9))
        )
        await uow.commit()
    async with uow_factory() as uow:
        stored = (await uow.attempts.for_runs([run.id]))[run.id]
    assert stored == [
        RunAttempt(
            run.id,
            1,
            T0,
            "exec-1",
            "cuda:0",
            T0 + timedelta(seconds=5),
            AttemptOutcome.CRASHED,
            "killed by SIGKILL",
        ),
        never_begun.ended(AttemptOutcome.CANCELLED, "cancelled", T0 + timedelta(seconds=9)),
    ]
