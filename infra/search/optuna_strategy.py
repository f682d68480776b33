"""The SearchStrategy on Optuna: its samplers and pruners, asked through a study rebuilt for each decision.

Why not ``optuna.storages.RDBStorage``: it needs a synchronous driver (the service runs on asyncpg, and no
psycopg is installed), its calls would block the event loop, and it keeps its own schema (with its own
``alembic_version`` table, which collides with ours) in our database. Instead each trial's params,
reported values, state and Optuna's per-trial system attributes live in ``optimization_results``, and
every decision adds them to a fresh in-memory study with ``study.add_trials(create_trial(...))``, Optuna's
documented way to seed a study with known trials, before ``study.ask`` or ``pruner.prune``. The search
state is in PostgreSQL, nothing lives in a process between decisions, and any process may decide.
"""

from __future__ import annotations

import json
import warnings
import zlib
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState, create_trial

from ptw.domain.optimizations import Direction, Optimization, OptimizationResult, ResultState
from ptw.domain.ports import PruneAdvice, TrialSuggestion
from ptw.domain.search_space import (
    CategoricalParameter,
    FloatParameter,
    Parameter,
    grid_values,
    parse_space,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

_STATES = {
    ResultState.RUNNING: TrialState.RUNNING,
    ResultState.COMPLETE: TrialState.COMPLETE,
    ResultState.PRUNED: TrialState.PRUNED,
    ResultState.FAILED: TrialState.FAIL,
}


class OptunaStrategy:
    """Stateless: everything a decision needs arrives with the call."""

    def suggest(self, optimization: Optimization, trials: Sequence[OptimizationResult]) -> TrialSuggestion:
        parameters = parse_space(optimization.space)
        distributions = {name: _distribution(p) for name, p in parameters.items()}
        study = _study(optimization, parameters, trials, distributions, number=len(trials))
        with warnings.catch_warnings():
            # Optuna warns about experimental options and about falling back to independent sampling
            # (CMA-ES with a categorical parameter): choices made on purpose here, not news to a user.
            warnings.simplefilter("ignore")
            trial = study.ask(distributions)
        frozen = study.get_trials(deepcopy=False)[trial.number]
        return TrialSuggestion(config=dict(trial.params), search_state=_plain(frozen.system_attrs))

    def should_prune(
        self, optimization: Optimization, trials: Sequence[OptimizationResult], trial: OptimizationResult
    ) -> PruneAdvice:
        parameters = parse_space(optimization.space)
        distributions = {name: _distribution(p) for name, p in parameters.items()}
        study = _study(optimization, parameters, trials, distributions, number=len(trials))
        position = next(i for i, t in enumerate(trials) if t.id == trial.id)
        frozen = study.get_trials(deepcopy=False)[position]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prune = bool(study.pruner.prune(study, frozen))
        # Pruners (successive halving, hyperband) record rung promotions on the trial: keep them.
        after = study.get_trials(deepcopy=False)[position]
        return PruneAdvice(prune=prune, search_state=_plain(after.system_attrs))


def _study(
    optimization: Optimization,
    parameters: dict[str, Parameter],
    trials: Sequence[OptimizationResult],
    distributions: dict[str, BaseDistribution],
    number: int,
) -> optuna.Study:
    seed = _seed(optimization.id, number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            study_name=optimization.id,  # Hyperband assigns brackets by study name and trial number
            direction="maximize" if optimization.direction is Direction.MAXIMIZE else "minimize",
            sampler=_sampler(optimization, parameters, seed),
            pruner=_pruner(optimization.pruner, optimization.max_trials),
        )
        study.add_trials([_frozen(t, distributions) for t in trials])
    return study


def _frozen(trial: OptimizationResult, distributions: dict[str, BaseDistribution]) -> FrozenTrial:
    state = _STATES[trial.state]
    value = None
    if state is TrialState.COMPLETE:
        value = trial.value
        if value is None:
            state = TrialState.FAIL
    elif state is TrialState.PRUNED:
        value = trial.last_reported  # what Optuna's own tell records for a pruned trial
    params = {k: v for k, v in trial.config.items() if k in distributions}
    return create_trial(
        state=state,
        value=value,
        params=params,
        distributions={k: distributions[k] for k in params},
        intermediate_values=dict(trial.intermediate),
        system_attrs=dict(trial.search_state),
    )


def _sampler(optimization: Optimization, parameters: dict[str, Parameter], seed: int) -> Any:
    """A fresh sampler seeded by trial number: a rebuilt study must not draw the same values each time."""
    name = optimization.sampler or "tpe"
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        # One seed per search: the grid's order is drawn from it, and trial n visits grid point n.
        grid = {n: grid_values(p) for n, p in parameters.items()}
        return optuna.samplers.GridSampler(grid, seed=_seed(optimization.id, 0))  # type: ignore[arg-type]
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    # Fewer random start-up trials for short searches, so the model guides most of them.
    startup = max(4, min(10, (optimization.max_trials or 30) // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def _pruner(name: str | None, max_trials: int | None) -> optuna.pruners.BasePruner:
    if name == "median":
        # Optuna's 5 complete trials before pruning, fewer for short searches (2 for 12 trials).
        return optuna.pruners.MedianPruner(n_startup_trials=max(2, min(5, (max_trials or 30) // 6)))
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def _distribution(parameter: Parameter) -> BaseDistribution:
    if isinstance(parameter, CategoricalParameter):
        return CategoricalDistribution(parameter.choices)
    if isinstance(parameter, FloatParameter):
        return FloatDistribution(parameter.low, parameter.high, log=parameter.log, step=parameter.step)
    return IntDistribution(parameter.low, parameter.high, log=parameter.log, step=parameter.step)


def _seed(optimization_id: str, number: int) -> int:
    return (zlib.crc32(optimization_id.encode()) + 7919 * number) % 2**31


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy (the attributes go to a JSON column)."""
    return dict(json.loads(json.dumps(attrs, default=str)))
