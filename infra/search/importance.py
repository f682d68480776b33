"""ParameterImportance on Optuna's importance evaluators: fANOVA over a search's complete trials.

The trials are added to an in-memory study, as the OptunaStrategy does for its decisions; fANOVA (Optuna's
default evaluator, a random forest of scikit-learn) then says how much of the objective's variance each
parameter explains.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import optuna
from optuna.trial import TrialState, create_trial

from ptw.domain.optimizations import Direction, Optimization, OptimizationResult, ResultState
from ptw.domain.search_space import parse_space
from ptw.infra.search.optuna_strategy import _distribution

# fANOVA needs a few points to fit its forest; with fewer, any ranking would be noise.
MIN_COMPLETE_TRIALS = 3


class OptunaImportance:
    def importance(
        self, optimization: Optimization, trials: Sequence[OptimizationResult]
    ) -> dict[str, float]:
        # Imported here: optuna.importance brings scikit-learn and SciPy, ~1.6 s that every `ptw worker`
        # and `ptw serve` start paid at import although only a search's page asks for importance.
        from optuna.importance import FanovaImportanceEvaluator

        distributions = {name: _distribution(p) for name, p in parse_space(optimization.space).items()}
        complete = [t for t in trials if t.state is ResultState.COMPLETE and t.value is not None]
        if len(complete) < MIN_COMPLETE_TRIALS or not distributions:
            return {}
        study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            direction="maximize" if optimization.direction is Direction.MAXIMIZE else "minimize",
        )
        for trial in complete:
            params = {k: v for k, v in trial.config.items() if k in distributions}
            study.add_trial(
                create_trial(
                    state=TrialState.COMPLETE,
                    value=trial.value,
                    params=params,
                    distributions={k: distributions[k] for k in params},
                )
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature notices, not news to a user
            try:
                found = optuna.importance.get_param_importances(
                    study, evaluator=FanovaImportanceEvaluator(seed=0)
                )
            except (RuntimeError, ValueError):  # e.g. every trial drew the same values: nothing to explain
                return {}
        return {name: float(value) for name, value in found.items()}
