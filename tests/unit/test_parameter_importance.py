"""Parameter importance on Optuna's fANOVA: the parameter the objective depends on comes first; too few
complete trials say nothing; pruned and failed trials are left out."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from ptw.domain.optimizations import (
    Direction,
    Optimization,
    OptimizationKind,
    OptimizationResult,
    ResultState,
)
from ptw.infra.search import OptunaImportance

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "noise": {"type": "float", "low": 0.0, "high": 1.0},
    "opt": {"type": "categorical", "choices": ["sgd", "adam"]},
}


def search(direction: Direction = Direction.MINIMIZE) -> Optimization:
    return Optimization(
        "opt-1", "p", "w", OptimizationKind.HYPERPARAMETER_SEARCH, T0, objective="loss", direction=direction,
        space=SPACE,
    )  # fmt: skip


def trial(number: int, config: dict[str, object], value: float, state: ResultState) -> OptimizationResult:
    return OptimizationResult(
        id=f"r{number}", optimization_id="opt-1", config=config, created_at=T0, state=state, value=value,
        number=number,
    )  # fmt: skip


def trials(count: int) -> list[OptimizationResult]:
    draw = random.Random(7)
    made = []
    for number in range(count):
        config = {
            "lr": 10 ** draw.uniform(-4, 0),
            "noise": draw.random(),
            "opt": draw.choice(["sgd", "adam"]),
        }
        # The loss depends on lr alone: the other two explain nothing.
        value = (float(config["lr"]) - 0.1) ** 2  # type: ignore[arg-type]
        made.append(trial(number, config, value, ResultState.COMPLETE))
    return made


def test_the_parameter_the_objective_depends_on_comes_first() -> None:
    found = OptunaImportance().importance(search(), trials(30))
    assert next(iter(found)) == "lr"
    assert set(found) == {"lr", "noise", "opt"}
    assert abs(sum(found.values()) - 1.0) < 1e-6
    assert found["lr"] > 0.5


def test_too_few_complete_trials_say_nothing_and_others_are_left_out() -> None:
    few = trials(2)
    assert OptunaImportance().importance(search(), few) == {}
    # Pruned and failed trials do not count: with them, still only two complete ones.
    others = [trial(n, {"lr": 0.5, "noise": 0.5, "opt": "sgd"}, 9.0, ResultState.PRUNED) for n in range(2, 8)]
    assert OptunaImportance().importance(search(), [*few, *others]) == {}
