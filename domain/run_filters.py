"""Checking what a run list is filtered and ordered by, before it becomes SQL."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ptw.domain.errors import BadInput
from ptw.domain.runs import COMPARISONS, MetricCondition

MAX_PARAM_FILTERS = 20
MAX_METRIC_CONDITIONS = 20
_PARAM = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def checked_param_filters(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """(name, value) pairs of params a run must have: names of letters, digits, ``_ . -``; values a
    string, a number or a boolean."""
    if not isinstance(params, Mapping):
        raise BadInput("filter.params: an object of param names to values", field="params")
    if len(params) > MAX_PARAM_FILTERS:
        raise BadInput(f"filter.params: at most {MAX_PARAM_FILTERS} params", field="params")
    found = []
    for name, value in params.items():
        if not isinstance(name, str) or not _PARAM.match(name):
            raise BadInput(f"filter.params: {name!r} is not a param name", field="params")
        if value is None or not isinstance(value, str | int | float) or _not_finite(value):
            raise BadInput(f"filter.params.{name}: a string, a finite number or a boolean", field="params")
        found.append((name, value))
    return tuple(sorted(found))


def checked_metric_key(key: str, field: str) -> str:
    if not isinstance(key, str) or not 0 < len(key) <= 200:
        raise BadInput(f"{field}: a metric name of 1-200 characters", field=field)
    return key


def checked_condition(condition: MetricCondition) -> MetricCondition:
    checked_metric_key(condition.key, "filter.metrics.key")
    if condition.op not in COMPARISONS:
        raise BadInput(f"filter.metrics.op: one of {', '.join(COMPARISONS)}", field="metrics")
    if _not_finite(condition.value):
        raise BadInput("filter.metrics.value: a finite number", field="metrics")
    return condition


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)
