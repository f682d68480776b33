"""Optimizations without I/O: the search space, how trials end and rank, starting, driving and cancelling a
search on the in-memory fakes, and Optuna's decisions on stored trials."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ptw.domain.errors import BadInput, Conflict
from ptw.domain.events import OptimizationProgressed, Progress
from ptw.domain.optimizations import (
    Direction,
    Optimization,
    OptimizationKind,
    OptimizationResult,
    OptimizationStatus,
    ResultState,
)
from ptw.domain.ports import PruneAdvice, TrialSuggestion
from ptw.domain.runs import Run, RunStatus
from ptw.domain.search_space import FloatParameter, IntParameter, grid_size, parse_space
from ptw.domain.services.optimization_driver import OptimizationDriver, trial_key
from ptw.domain.services.optimizations import OptimizationService, OptimizationSpec
from ptw.domain.tenancy import Actor, Role
from ptw.domain.trials import best_of, ranked, settle, tuning_results
from ptw.domain.workflows import Workflow
from ptw.infra.search import LocalLease, OptunaStrategy
from tests.fixtures.memory import MemoryWorld

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SCHEMA = {
    "type": "object",
    "properties": {"x": {"type": "number", "minimum": -10, "maximum": 10}, "epochs": {"type": "integer"}},
    "additionalProperties": False,
}
SPACE = {"x": {"type": "float", "low": -10, "high": 10}}


# -- the search space ------------------------------------------------------------------------------


def test_a_space_of_every_kind_parses() -> None:
    parsed = parse_space(
        {
            "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
            "hidden": {"type": "int", "low": 16, "high": 256, "step": 16},
            "opt": {"type": "categorical", "choices": ["sgd", "adam"]},
        }
    )
    assert parsed["lr"] == FloatParameter("lr", 1e-4, 0.1, log=True)
    assert parsed["hidden"] == IntParameter("hidden", 16, 256, step=16)
    assert grid_size({"hidden": parsed["hidden"], "opt": parsed["opt"]}) == 16 * 2


@pytest.mark.parametrize(
    ("space", "path"),
    [
        ({}, "space"),
        ([1], "space"),
        ({"lr": {"type": "float", "low": 1, "high": 0}}, "space.lr.high"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "space.lr.low"),
        ({"lr": {"type": "float", "low": "a", "high": 1}}, "space.lr.low"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "stp": 1}}, "space.lr.stp"),
        ({"lr": {"type": "double", "low": 0, "high": 1}}, "space.lr.type"),
        ({"n": {"type": "int", "low": 1.5, "high": 4}}, "space.n.low"),
        ({"n": {"type": "int", "low": 1, "high": 4, "step": 0}}, "space.n.step"),
        ({"n": {"type": "int", "low": 1, "high": 64, "step": 2, "log": True}}, "space.n.step"),
        ({"c": {"type": "categorical", "choices": []}}, "space.c.choices"),
        ({"c": {"type": "categorical", "choices": ["a", "a"]}}, "space.c.choices"),
        ({"c": {"type": "categorical", "choices": [{"a": 1}]}}, "space.c.choices.0"),
    ],
)
def test_a_bad_space_is_bad_input_naming_the_place(space: Any, path: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_space(space)
    assert caught.value.details["path"] == path


def test_the_grid_needs_a_step_for_floats() -> None:
    with pytest.raises(BadInput) as caught:
        grid_size(parse_space(SPACE))
    assert caught.value.details["path"] == "space.x.step"


# -- how trials end and rank -----------------------------------------------------------------------


def _result(
    number: int, state: ResultState = ResultState.RUNNING, value: float | None = None
) -> OptimizationResult:
    return OptimizationResult(
        id=f"r{number}",
        optimization_id="o",
        config={},
        created_at=T0,
        state=state,
        value=value,
        number=number,
    )


def _run(status: RunStatus, summary: dict[str, Any] | None = None, error: str | None = None) -> Run:
    return Run("run", "p", "w", {}, T0, status=status, summary=summary, error=error)


def test_a_trial_is_worth_its_last_report_or_else_its_summary() -> None:
    reported = replace(_result(0), intermediate={0: 0.2, 5: 0.9, 3: 0.5})
    ended = settle(reported, _run(RunStatus.SUCCEEDED, {"acc": 0.1, "name": "x"}), "acc")
    assert (ended.state, ended.value) == (ResultState.COMPLETE, 0.9)
    assert ended.metrics == {"acc": 0.1, "reports": 3}
    from_summary = settle(_result(1), _run(RunStatus.SUCCEEDED, {"acc": 0.7}), "acc")
    assert (from_summary.state, from_summary.value) == (ResultState.COMPLETE, 0.7)


def test_trial_states_follow_their_runs() -> None:
    nothing = settle(_result(0), _run(RunStatus.SUCCEEDED, {"loss": 1.0}), "acc")
    assert nothing.state is ResultState.FAILED and nothing.metrics["objective_missing"] is True
    assert "never logged its objective 'acc'" in nothing.metrics["error"]
    pruned = settle(replace(_result(1), intermediate={2: -4.0}), _run(RunStatus.PRUNED), "acc")
    assert (pruned.state, pruned.value) == (ResultState.PRUNED, -4.0)
    failed = settle(_result(2), _run(RunStatus.FAILED, error="boom"), "acc")
    assert (failed.state, failed.metrics["error"]) == (ResultState.FAILED, "boom")
    assert settle(_result(3), _run(RunStatus.CANCELLED), "acc").metrics["error"] == "cancelled"
    assert settle(_result(4), None, "acc").state is ResultState.FAILED


def test_results_rank_best_first_and_only_complete_ones_can_be_best() -> None:
    results = [
        _result(0, ResultState.COMPLETE, 0.5),
        _result(1, ResultState.PRUNED, 0.99),
        _result(2, ResultState.COMPLETE, 0.8),
        _result(3, ResultState.FAILED),
        _result(4, ResultState.RUNNING),
    ]
    up = Optimization("o", "p", "w", OptimizationKind.HYPERPARAMETER_SEARCH, T0, direction=Direction.MAXIMIZE)
    assert [r.number for r in ranked(results, Direction.MAXIMIZE)] == [2, 0, 1, 3, 4]
    assert [r.number for r in ranked(results, Direction.MINIMIZE)][:2] == [0, 2]
    assert best_of(up, results) == results[2]
    assert best_of(replace(up, direction=Direction.MINIMIZE), results) == results[0]
    assert best_of(up, results[3:]) is None


def test_tuning_variants_become_results_and_an_inaccurate_one_cannot_be_best() -> None:
    tuning = Optimization(
        "o", "p", "w", OptimizationKind.PERFORMANCE_TUNING, T0, direction=Direction.MAXIMIZE
    )
    summary = {
        "variants": [
            {
                "name": "eager",
                "config": {},
                "state": "COMPLETE",
                "value": 100.0,
                "metrics": {"max_abs_diff": 0},
            },
            {
                "name": "amp",
                "config": {"amp": "bf16"},
                "state": "COMPLETE",
                "value": 300.0,
                "metrics": {"max_abs_diff": 0.5, "tolerance": 0.1},
            },
            {
                "name": "amp-loose",
                "config": {"amp": "fp16"},
                "state": "COMPLETE",
                "value": 120.0,
                "metrics": {"max_abs_diff": 0.05, "tolerance": 0.1},
            },
            {
                "name": "compile",
                "config": {"compile": True},
                "state": "COMPLETE",
                "value": 150.0,
                "metrics": {"max_abs_diff": 1e-6},
            },
            {"name": "bad", "config": {}, "state": "FAILED", "error": "no inductor"},
        ],
        "best": "amp",
    }
    results = tuning_results(tuning, _run(RunStatus.SUCCEEDED, summary), tolerance=1e-3)
    assert [(r.config.get("variant"), r.state, r.value) for r in results] == [
        ("eager", ResultState.COMPLETE, 100.0),
        ("amp", ResultState.COMPLETE, 300.0),
        ("amp-loose", ResultState.COMPLETE, 120.0),
        ("compile", ResultState.COMPLETE, 150.0),
        ("bad", ResultState.FAILED, None),
    ]
    assert results[4].metrics["error"] == "no inductor"
    assert results[2].metrics["within_tolerance"] is True  # its own, looser tolerance
    best = best_of(tuning, results)
    assert best is not None and best.config == {"variant": "compile", "compile": True}


# -- starting, driving, reporting and cancelling on the fakes ---------------------------------------


class CountingStrategy:
    """Trial n gets x = n; prunes any trial that reports below ``prune_below``."""

    def __init__(self, prune_below: float | None = None) -> None:
        self.prune_below = prune_below

    def suggest(self, optimization: Optimization, trials: Sequence[OptimizationResult]) -> TrialSuggestion:
        return TrialSuggestion(config={"x": float(len(trials))}, search_state={"n": len(trials)})

    def should_prune(
        self, optimization: Optimization, trials: Sequence[OptimizationResult], trial: OptimizationResult
    ) -> PruneAdvice:
        last = trial.last_reported
        prune = self.prune_below is not None and last is not None and last < self.prune_below
        return PruneAdvice(prune, {**trial.search_state, "asked": True})


class Setup:
    def __init__(self, strategy: Any = None) -> None:
        self.world = MemoryWorld()
        strategy = strategy or CountingStrategy()
        w = self.world
        self.service = OptimizationService(w.db, w.bus, strategy, w.validator)
        self.driver = OptimizationDriver(w.db, w.bus, w.queue, strategy, LocalLease(), w.validator)
        self.made: tuple[Actor, Workflow] | None = None

    async def begin(self, **spec: Any) -> tuple[Actor, Workflow, Optimization]:
        if self.made is None:
            actor = await self.world.actor("demo", Role.MEMBER)
            defaults = {"x": 0.0, "epochs": 3}
            self.made = actor, await self.world.workflow(actor, params_schema=SCHEMA, defaults=defaults)
        actor, workflow = self.made
        fields = {
            "objective": "score",
            "direction": Direction.MAXIMIZE,
            "space": SPACE,
            "max_trials": 3,
            "max_parallel": 2,
            **spec,
        }
        started = await self.service.start(
            actor, None, OptimizationSpec(workflow.id, OptimizationKind.HYPERPARAMETER_SEARCH, **fields)
        )
        return actor, workflow, started

    def end_run(self, run_id: str, status: RunStatus, summary: dict[str, Any] | None = None) -> None:
        run = self.world.stored_run(run_id)
        run.status, run.summary = status, summary
        self.world.db.put(run)

    def results(self, optimization_id: str) -> list[OptimizationResult]:
        mine = [r for r in self.world.db.state.results.values() if r.optimization_id == optimization_id]
        return sorted(mine, key=lambda r: r.number or 0)

    def progress(self) -> list[Progress]:
        return [e.progress for e in self.world.bus.events(OptimizationProgressed)]


async def test_start_checks_the_space_against_the_workflows_params() -> None:
    setup = Setup()
    with pytest.raises(BadInput) as caught:
        await setup.begin(space={"x": {"type": "float", "low": -20, "high": 10}})
    assert caught.value.details["path"] == "space.x"
    with pytest.raises(BadInput) as caught:
        await setup.begin(space={"x": {"type": "float", "low": 0.1, "high": 1, "log": True, "step": 0.1}})
    assert caught.value.details["path"] == "space.x.step"
    with pytest.raises(BadInput, match="sampler"):
        await setup.begin(sampler="bayes")
    with pytest.raises(BadInput, match="objective"):
        await setup.begin(objective=" ")
    with pytest.raises(BadInput, match="maxParallel"):
        await setup.begin(max_parallel=0)


async def test_the_driver_runs_a_search_to_its_best_trial() -> None:
    setup = Setup()
    _, _, started = await setup.begin()
    assert started.status is OptimizationStatus.QUEUED
    await setup.driver.tick()
    first = setup.results(started.id)
    assert [r.number for r in first] == [0, 1]  # max_parallel trials at once
    runs = [setup.world.stored_run(r.run_id or "") for r in first]
    assert [run.params for run in runs] == [{"x": 0.0, "epochs": 3}, {"x": 1.0, "epochs": 3}]
    assert {run.optimization_id for run in runs} == {started.id}
    assert runs[0].idempotency_key == trial_key(started.id, 0)
    assert [job.run_id for job in setup.world.queue.jobs] == [run.id for run in runs]
    await setup.driver.tick()
    assert len(setup.results(started.id)) == 2  # nothing ended: nothing new

    assert not await setup.service.report(runs[0].id, 0, 0.25)
    setup.end_run(runs[0].id, RunStatus.SUCCEEDED, {"score": 0.1})
    setup.end_run(runs[1].id, RunStatus.FAILED)
    await setup.driver.tick()
    results = setup.results(started.id)
    assert [(r.state, r.value) for r in results] == [
        (ResultState.COMPLETE, 0.25),
        (ResultState.FAILED, None),
        (ResultState.RUNNING, None),
    ]
    setup.end_run(results[2].run_id or "", RunStatus.SUCCEEDED, {"score": 0.75})
    await setup.driver.tick()
    done = setup.world.db.state.optimizations[started.id]
    assert done.status is OptimizationStatus.SUCCEEDED and done.finished_at is not None
    assert len(setup.results(started.id)) == 3
    best = best_of(done, setup.results(started.id))
    assert best is not None and best.number == 2
    progress = setup.progress()
    assert progress[0] is Progress.STARTED and progress[-1] is Progress.FINISHED
    assert {
        Progress.TRIAL_STARTED,
        Progress.TRIAL_REPORTED,
        Progress.TRIAL_COMPLETED,
        Progress.TRIAL_FAILED,
        Progress.NEW_BEST,
    } <= set(progress)
    await setup.driver.tick()
    assert setup.progress() == progress  # a finished optimization is left alone


async def test_a_search_whose_trials_all_fail_fails() -> None:
    setup = Setup()
    _, _, started = await setup.begin(max_trials=2)
    await setup.driver.tick()
    for result in setup.results(started.id):
        setup.end_run(result.run_id or "", RunStatus.FAILED)
    await setup.driver.tick()
    failed = setup.world.db.state.optimizations[started.id]
    assert failed.status is OptimizationStatus.FAILED and "2 failed" in (failed.error or "")


async def test_driving_twice_at_once_never_doubles_a_trial() -> None:
    setup = Setup()
    _, _, started = await setup.begin(max_trials=4, max_parallel=4)
    other = replace(setup.driver, lease=LocalLease())  # a second driver: only the store keeps them apart
    await asyncio.gather(setup.driver.advance(started.id), other.advance(started.id), setup.driver.tick())
    assert [r.number for r in setup.results(started.id)] == [0, 1, 2, 3]
    assert len(setup.world.db.state.runs) == 4


async def test_the_store_refuses_a_second_trial_of_the_same_number() -> None:
    setup = Setup()
    _, _, started = await setup.begin()
    await setup.driver.tick()
    async with setup.world.db() as uow:
        with pytest.raises(Conflict):
            await uow.optimizations.add_result(replace(_result(0), id="again", optimization_id=started.id))


async def test_a_time_budget_stops_new_trials() -> None:
    setup = Setup()
    _, _, started = await setup.begin(max_trials=10, max_parallel=1, time_budget_seconds=60)
    await setup.driver.tick()
    stored = setup.world.db.state.optimizations[started.id]
    stored.started_at = (stored.started_at or T0) - timedelta(seconds=61)
    setup.world.db.put(stored)
    setup.end_run(setup.results(started.id)[0].run_id or "", RunStatus.SUCCEEDED, {"score": 1.0})
    await setup.driver.tick()
    assert len(setup.results(started.id)) == 1
    assert setup.world.db.state.optimizations[started.id].status is OptimizationStatus.SUCCEEDED


async def test_reports_are_stored_and_the_pruner_decides() -> None:
    setup = Setup(CountingStrategy(prune_below=0.5))
    _, _, started = await setup.begin()
    await setup.driver.tick()
    run_id = setup.results(started.id)[0].run_id or ""
    assert not await setup.service.report(run_id, 0, 0.7)
    assert await setup.service.report(run_id, 1, 0.3)
    stored = setup.results(started.id)[0]
    assert stored.intermediate == {0: 0.7, 1: 0.3} and stored.search_state["asked"] is True
    assert not await setup.service.report("not-a-trial", 0, 1.0)
    assert "not-a-trial" in setup.service._not_trials


async def test_cancel_stops_the_running_trials() -> None:
    setup = Setup()
    actor, _, started = await setup.begin()
    await setup.driver.tick()
    runs = [r.run_id or "" for r in setup.results(started.id)]
    running = setup.world.stored_run(runs[1])
    running.status = RunStatus.RUNNING
    setup.world.db.put(running)
    cancelled = await setup.service.cancel(actor, started.id)
    assert cancelled.status is OptimizationStatus.CANCELLED
    assert [setup.world.stored_run(r).status for r in runs] == [RunStatus.CANCELLED, RunStatus.CANCELLING]
    assert {r.state for r in setup.results(started.id)} == {ResultState.FAILED}
    await setup.driver.tick()
    assert len(setup.results(started.id)) == 2


# -- Optuna's decisions on stored trials ------------------------------------------------------------


def _search(**fields: Any) -> Optimization:
    defaults = {"space": SPACE, "sampler": "tpe", "pruner": "median", "max_trials": 12}
    return Optimization(
        "opt-1",
        "p",
        "w",
        OptimizationKind.HYPERPARAMETER_SEARCH,
        T0,
        objective="score",
        direction=Direction.MAXIMIZE,
        **{**defaults, **fields},
    )


def test_optuna_suggests_in_the_space_and_differently_per_trial() -> None:
    strategy, search = OptunaStrategy(), _search(sampler="random")
    first = strategy.suggest(search, [])
    again = strategy.suggest(search, [])
    second = strategy.suggest(search, [replace(_result(0), config=first.config)])
    assert first.config == again.config  # deterministic per (search, trial number): a retry is the same
    assert first.config != second.config
    assert -10 <= first.config["x"] <= 10


def test_the_median_pruner_prunes_a_trial_below_the_median() -> None:
    strategy, search = OptunaStrategy(), _search()
    done = [
        replace(_result(i, ResultState.COMPLETE, 1.0), config={"x": float(i)}, intermediate={0: 1.0, 1: 1.0})
        for i in range(5)
    ]
    bad = replace(_result(5), config={"x": 9.0}, intermediate={0: -50.0})
    good = replace(_result(5), config={"x": 3.0}, intermediate={0: 2.0})
    assert strategy.should_prune(search, [*done, bad], bad).prune
    assert not strategy.should_prune(search, [*done, good], good).prune
    assert not strategy.should_prune(replace(search, pruner="none"), [*done, bad], bad).prune


def test_the_grid_sampler_visits_each_point_once_across_rebuilt_studies() -> None:
    strategy = OptunaStrategy()
    search = _search(sampler="grid", space={"n": {"type": "int", "low": 1, "high": 4}})
    trials: list[OptimizationResult] = []
    for number in range(4):
        suggestion = strategy.suggest(search, trials)
        trials.append(
            replace(_result(number), config=suggestion.config, search_state=suggestion.search_state)
        )
    assert sorted(t.config["n"] for t in trials) == [1, 2, 3, 4]


@pytest.mark.parametrize("sampler", ["tpe", "cmaes", "random"])
@pytest.mark.parametrize("pruner", ["successive_halving", "hyperband"])
def test_every_sampler_and_pruner_works_on_rebuilt_studies(sampler: str, pruner: str) -> None:
    strategy = OptunaStrategy()
    search = _search(
        sampler=sampler, pruner=pruner, space={**SPACE, "n": {"type": "int", "low": 1, "high": 8}}
    )
    trials: list[OptimizationResult] = []
    for number in range(8):
        suggestion = strategy.suggest(search, trials)
        trial = replace(_result(number), config=suggestion.config, search_state=suggestion.search_state)
        score = -((suggestion.config["x"] - 3) ** 2)
        for step in range(4):
            trial = replace(trial, intermediate={**trial.intermediate, step: score + step})
            advice = strategy.should_prune(search, [*trials, trial], trial)
            trial = replace(trial, search_state=advice.search_state)
            if advice.prune:
                trial = replace(trial, state=ResultState.PRUNED, value=trial.last_reported)
                break
        else:
            trial = replace(trial, state=ResultState.COMPLETE, value=score + 3)
        trials.append(trial)
    assert all(-10 <= t.config["x"] <= 10 and 1 <= t.config["n"] <= 8 for t in trials)


def test_a_tuning_ranks_its_variants_by_the_objective_it_names() -> None:
    tuning = Optimization(
        "o", "p", "w", OptimizationKind.PERFORMANCE_TUNING, T0, "QUEUED", "peak_memory_mb", Direction.MINIMIZE
    )
    variants = [
        {"name": "eager", "state": "COMPLETE", "value": 100.0, "metrics": {"peak_memory_mb": 50.0}},
        {"name": "amp", "state": "COMPLETE", "value": 300.0, "metrics": {"peak_memory_mb": 30.0}},
        {"name": "big", "state": "COMPLETE", "value": 400.0, "metrics": {"peak_memory_mb": 90.0}},
    ]
    results = tuning_results(tuning, _run(RunStatus.SUCCEEDED, {"variants": variants}), tolerance=None)
    assert [r.value for r in results] == [50.0, 30.0, 90.0]
    best = best_of(tuning, results)
    assert best is not None and best.config["variant"] == "amp"


async def test_a_first_trial_without_the_objective_fails_the_search_at_once() -> None:
    setup = Setup()
    _, _, started = await setup.begin(max_trials=3, max_parallel=2)
    await setup.driver.tick()
    first, second = setup.results(started.id)
    await setup.service.objective_missing(first.run_id or "", ["loss", "accuracy"])
    setup.end_run(first.run_id or "", RunStatus.SUCCEEDED, {"loss": 0.5})
    await setup.driver.tick()

    optimization = setup.world.db.state.optimizations[started.id]
    assert optimization.status is OptimizationStatus.FAILED
    assert (
        optimization.error
        == "trial 0: the trial never logged its objective 'score'; it logged: accuracy, loss"
    )
    assert [r.state for r in setup.results(started.id)] == [ResultState.FAILED, ResultState.FAILED]
    assert setup.world.stored_run(second.run_id or "").status is RunStatus.CANCELLED  # was still queued
