"""Hyperparameter search adapters: Optuna's samplers and pruners, and the lease on who drives a search."""

from ptw.infra.search.lease import LocalLease, PostgresLease
from ptw.infra.search.optuna_strategy import OptunaStrategy

__all__ = ["LocalLease", "OptunaStrategy", "PostgresLease"]
