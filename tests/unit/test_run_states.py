"""The run state machine: every legal move, every illegal one, requeue, and terminal states."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from ptw.domain.errors import IllegalTransition
from ptw.domain.runs import TERMINAL, TRANSITIONS, Run, RunStatus

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)

LEGAL = [(src, dst) for src, targets in TRANSITIONS.items() for dst in sorted(targets)]
ILLEGAL = [(src, dst) for src in RunStatus for dst in RunStatus if dst not in TRANSITIONS[src]]


def run_in(
    status: RunStatus, executor: str | None = None, device: str | None = None, attempt: int = 1
) -> Run:
    return Run(
        id="r1",
        project_id="p1",
        workflow_id="w1",
        params={"lr": 0.1},
        created_at=T0,
        status=status,
        attempt=attempt,
        executor=executor,
        device=device,
    )


def test_every_status_has_an_entry_and_illegal_moves_exist() -> None:
    assert set(TRANSITIONS) == set(RunStatus)
    assert len(LEGAL) == 16
    assert len(LEGAL) + len(ILLEGAL) == len(RunStatus) ** 2


@pytest.mark.parametrize(("src", "dst"), LEGAL, ids=lambda s: s.value)
def test_legal_transition_moves_and_stamps_times(src: RunStatus, dst: RunStatus) -> None:
    run = run_in(src)
    run.transition(dst, LATER)
    assert run.status is dst
    assert run.updated_at == LATER
    assert run.finished_at == (LATER if dst in TERMINAL else None)
    assert run.started_at == (LATER if dst is RunStatus.RUNNING else None)


@pytest.mark.parametrize(("src", "dst"), ILLEGAL, ids=lambda s: s.value)
def test_illegal_transition_raises_conflict_and_changes_nothing(src: RunStatus, dst: RunStatus) -> None:
    run = run_in(src)
    before = dataclasses.replace(run, params=dict(run.params), metric_keys=list(run.metric_keys))
    with pytest.raises(IllegalTransition) as caught:
        run.transition(dst, LATER)
    assert caught.value.code == "CONFLICT"
    assert caught.value.details == {"run_id": "r1", "status": src.value}
    assert run == before


def test_started_at_keeps_the_first_start_across_attempts() -> None:
    run = run_in(RunStatus.STARTING)
    run.transition(RunStatus.RUNNING, T0)
    run.requeue(LATER)
    run.transition(RunStatus.STARTING, LATER)
    run.transition(RunStatus.RUNNING, LATER)
    assert run.started_at == T0


@pytest.mark.parametrize("src", [RunStatus.STARTING, RunStatus.RUNNING])
def test_requeue_starts_a_new_attempt_on_no_executor(src: RunStatus) -> None:
    run = run_in(src, executor="exec-1", device="cuda:0", attempt=2)
    run.requeue(LATER)
    assert run.status is RunStatus.QUEUED
    assert run.attempt == 3
    assert run.executor is None and run.device is None
    assert run.updated_at == LATER
    assert run.finished_at is None


@pytest.mark.parametrize("src", [RunStatus.QUEUED, RunStatus.CANCELLING, *sorted(TERMINAL)])
def test_requeue_from_elsewhere_is_refused_and_keeps_the_attempt(src: RunStatus) -> None:
    run = run_in(src, executor="exec-1", attempt=1)
    with pytest.raises(IllegalTransition):
        run.requeue(LATER)
    assert (run.status, run.attempt, run.executor) == (src, 1, "exec-1")


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_statuses_have_no_exit(status: RunStatus) -> None:
    assert status.terminal
    assert TRANSITIONS[status] == frozenset()


def test_only_the_four_end_states_are_terminal() -> None:
    assert {s for s in RunStatus if s.terminal} == {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.PRUNED,
    }
