"""How trials end and rank: a finished run's value and state, a tuning summary's results, the best result."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from ptw.domain.clock import new_id, utcnow
from ptw.domain.optimizations import Direction, Optimization, OptimizationResult, ResultState
from ptw.domain.runs import Run, RunStatus

MAX_SUMMARY_METRICS = 50
WITHIN_TOLERANCE = "within_tolerance"  # a tuning variant's metric: its outputs match the baseline's
# Where a trial's objective values came from (a result's metrics entry): its logged points of the
# objective's key, or its reports that name the objective (those win: they may count steps differently).
OBJECTIVE_FROM = "objective_from"
FROM_LOGS, FROM_REPORTS = "logs", "reports"
LOGGED_KEYS = "logged_keys"  # what a trial that never logged its objective logged instead
OBJECTIVE_MISSING = "objective_missing"
MAX_LOGGED_KEYS = 50
# What a performance tuning may optimize (each variant measures them all), and its natural direction.
TUNING_OBJECTIVES = {
    "throughput": Direction.MAXIMIZE,
    "speedup": Direction.MAXIMIZE,
    "step_ms_p50": Direction.MINIMIZE,
    "peak_memory_mb": Direction.MINIMIZE,
}
MAX_INTERMEDIATE = 2000  # values kept by step for pruning; a longer series keeps every 2nd, 4th, ... step


def number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def thinned(values: dict[int, float]) -> dict[int, float]:
    """``values`` within MAX_INTERMEDIATE entries: the steps that are multiples of the smallest power of
    two that fits, and the newest. Every trial keeps the same steps, so pruners still compare like steps."""
    if len(values) <= MAX_INTERMEDIATE:
        return values
    newest = max(values)
    stride = 2
    while sum(1 for s in values if s % stride == 0) >= MAX_INTERMEDIATE:
        stride *= 2
    return {s: v for s, v in values.items() if s % stride == 0 or s == newest}


def settle(result: OptimizationResult, run: Run | None, objective: str | None) -> OptimizationResult:
    """The result of a trial whose run ended. Its value is the objective's last value as the run logged
    (or reported) it, else the objective's entry in the run's summary; a run that succeeded without
    either fails as a trial, saying what it logged instead (``OBJECTIVE_MISSING``)."""
    if run is None:
        return replace(result, state=ResultState.FAILED, metrics={"error": "the trial's run is gone"})
    summary = run.summary or {}
    metrics: dict[str, Any] = {}
    for key, raw in summary.items():
        number = number_or_none(raw)
        if number is not None and len(metrics) < MAX_SUMMARY_METRICS:
            metrics[str(key)] = number
    metrics["reports"] = len(result.intermediate)
    reported = result.last_reported
    value = reported if reported is not None else number_or_none(summary.get(objective or ""))
    if run.status is RunStatus.SUCCEEDED:
        if value is None:
            logged = result.metrics.get(LOGGED_KEYS) or sorted(run.metric_keys)
            error = f"the trial never logged its objective {objective!r}; it logged: " + (
                ", ".join(map(str, logged)) or "nothing"
            )
            metrics |= {OBJECTIVE_MISSING: True, LOGGED_KEYS: list(logged)}
            return replace(result, state=ResultState.FAILED, metrics={**metrics, "error": error})
        return replace(result, state=ResultState.COMPLETE, value=value, metrics=metrics)
    if run.status is RunStatus.PRUNED:
        return replace(result, state=ResultState.PRUNED, value=reported, metrics=metrics)
    error = run.error or ("cancelled" if run.status is RunStatus.CANCELLED else run.status.value.lower())
    return replace(result, state=ResultState.FAILED, value=None, metrics={**metrics, "error": error})


def eligible(result: OptimizationResult) -> bool:
    """Whether the result may be the best: complete, with a value (and, for tuning, accurate enough)."""
    return (
        result.state is ResultState.COMPLETE
        and result.value is not None
        and result.metrics.get(WITHIN_TOLERANCE, True) is not False
    )


def ranked(results: Iterable[OptimizationResult], direction: Direction) -> list[OptimizationResult]:
    """Best first: eligible results by value for the direction, then the others by value, valueless last;
    ties keep trial order."""
    sign = -1.0 if direction is Direction.MAXIMIZE else 1.0

    def key(r: OptimizationResult) -> tuple[bool, bool, float, int, Any]:
        value = sign * r.value if r.value is not None else 0.0
        return (not eligible(r), r.value is None, value, r.number or 0, r.created_at)

    return sorted(results, key=key)


def best_of(optimization: Optimization, results: Iterable[OptimizationResult]) -> OptimizationResult | None:
    candidates = ranked((r for r in results if eligible(r)), optimization.direction)
    return candidates[0] if candidates else None


def tuning_results(optimization: Optimization, run: Run, tolerance: float | None) -> list[OptimizationResult]:
    """One result per variant the tuner measured (its summary's ``variants``); a variant whose outputs
    stray from the baseline's by more than its tolerance (the variant's own ``metrics.tolerance``, which
    the tuner loosens for low precision, else ``tolerance``) is kept but cannot be the best."""
    variants = (run.summary or {}).get("variants")
    if not isinstance(variants, list):
        return []
    now = utcnow()
    found = []
    for number, variant in enumerate(v for v in variants if isinstance(v, dict)):
        raw_config = variant.get("config")
        config: dict[str, Any] = raw_config if isinstance(raw_config, dict) else {}
        metrics = {k: v for k, v in (variant.get("metrics") or {}).items() if isinstance(k, str)}
        complete = str(variant.get("state", "")).upper() == ResultState.COMPLETE.value
        value = number_or_none(metrics.get(optimization.objective or "throughput"))
        if value is None and optimization.objective in (None, "throughput"):
            value = number_or_none(variant.get("value"))
        if variant.get("error"):
            metrics["error"] = str(variant["error"])
        limit = number_or_none(metrics.get("tolerance"))
        limit = tolerance if limit is None else limit
        if complete and limit is not None:
            diff = number_or_none(metrics.get("max_abs_diff"))
            metrics[WITHIN_TOLERANCE] = diff is None or diff <= limit
        found.append(
            OptimizationResult(
                id=new_id(),
                optimization_id=optimization.id,
                config={"variant": str(variant.get("name", f"variant-{number}")), **config},
                created_at=now,
                state=ResultState.COMPLETE if complete and value is not None else ResultState.FAILED,
                value=value,
                run_id=run.id,
                metrics=metrics,
                number=number,
            )
        )
    return found


def running(results: Sequence[OptimizationResult]) -> list[OptimizationResult]:
    return [r for r in results if r.state is ResultState.RUNNING]
