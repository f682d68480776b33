"""Hyperparameter search adapters: Optuna's samplers, pruners and importance evaluators, and the lease on
who drives a search."""

from ptw.infra.search.importance import OptunaImportance
from ptw.infra.search.lease import LocalLease, PostgresLease
from ptw.infra.search.optuna_strategy import OptunaStrategy

__all__ = ["LocalLease", "OptunaImportance", "OptunaStrategy", "PostgresLease"]
