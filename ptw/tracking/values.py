"""What ``run.log`` accepts, checked as ``ctx.log`` checks it: the same step and number rules (shared with
the executors' SDK), metric names the server can store (the domain's ``key_problem``), and non-finite
values dropped with one warning."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

from ptw.domain.metrics import key_problem
from ptw.executors.sdk import _number, _step

__all__ = ["Row", "RowChecker"]

Row = tuple[tuple[str, ...], list[float]]


class RowChecker:
    def __init__(self) -> None:
        self._checked_keys: set[tuple[str, ...]] = set()
        self._warned: set[str] = set()

    def step(self, step: Any) -> int:
        return step if type(step) is int and step >= 0 else _step(step)

    def row(self, metrics: Mapping[str, Any], step: int) -> Row:
        if not isinstance(metrics, Mapping):
            raise TypeError(
                f"run.log takes a mapping of metric names to numbers, not {type(metrics).__name__}"
            )
        keys = tuple(metrics)
        if keys not in self._checked_keys:
            for key in keys:
                problem = key_problem(key)
                if problem:
                    raise TypeError(f"run.log: {problem}")
            if len(self._checked_keys) < 1000:
                self._checked_keys.add(keys)
        values = [_number(v, f"the value of {k!r} at step {step}") for k, v in metrics.items()]
        if all(map(math.isfinite, values)):
            return keys, values
        kept = [(k, v) for k, v in zip(keys, values, strict=True) if math.isfinite(v)]
        for key, value in zip(keys, values, strict=True):
            if not math.isfinite(value) and key not in self._warned:
                self._warned.add(key)
                print(
                    f"ptw: dropped {value} for {key!r} at step {step}: non-finite values cannot be stored "
                    f"(further ones of {key!r} are dropped silently)",
                    file=sys.stderr,
                )
        return tuple(k for k, _ in kept), [v for _, v in kept]
