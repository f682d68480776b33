"""Hyperparameter search adapters: Optuna's samplers and pruners, and the lease on who drives a search."""

from infra.search.lease import LocalLease, PostgresLease
from infra.search.optuna_strategy import OptunaStrategy

__all__ = ["LocalLease", "OptunaStrategy", "PostgresLease"]
