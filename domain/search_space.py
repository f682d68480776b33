"""The search space of a hyperparameter search, as JSON: parsed and checked before anything starts.

``{"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": true},
"hidden": {"type": "int", "low": 16, "high": 256, "step": 16},
"opt": {"type": "categorical", "choices": ["sgd", "adam"]}}``. A mistake is a BadInput whose ``path``
names the offending place (``space.lr.low``), so a client can point at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ptw.domain.errors import BadInput

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("none", "median", "successive_halving", "hyperband")
MAX_PARAMETERS = 64
MAX_CHOICES = 1000
MAX_GRID = 100_000

_KEYS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}


@dataclass(frozen=True)
class FloatParameter:
    name: str
    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True)
class IntParameter:
    name: str
    low: int
    high: int
    log: bool = False
    step: int = 1


@dataclass(frozen=True)
class CategoricalParameter:
    name: str
    choices: tuple[Any, ...]


Parameter = FloatParameter | IntParameter | CategoricalParameter


def parse_space(space: Any) -> dict[str, Parameter]:
    if not isinstance(space, dict) or not space:
        raise _bad("space", "the search space must be a non-empty JSON object of parameters")
    if len(space) > MAX_PARAMETERS:
        raise _bad("space", f"a search space has at most {MAX_PARAMETERS} parameters")
    return {name: _parameter(name, spec) for name, spec in space.items()}


def check_choice(sampler: str | None, pruner: str | None) -> tuple[str, str]:
    """The sampler and pruner names, defaulted (TPE, median) and checked."""
    sampler = (sampler or "tpe").lower()
    pruner = (pruner or "median").lower()
    if sampler not in SAMPLERS:
        raise BadInput(f"unknown sampler {sampler!r}: use one of {', '.join(SAMPLERS)}", field="sampler")
    if pruner not in PRUNERS:
        raise BadInput(f"unknown pruner {pruner!r}: use one of {', '.join(PRUNERS)}", field="pruner")
    return sampler, pruner


def grid_values(parameter: Parameter) -> list[Any] | None:
    """Every value the parameter can take, or None when it is continuous (a float without a step)."""
    if isinstance(parameter, CategoricalParameter):
        return list(parameter.choices)
    if isinstance(parameter, IntParameter):
        return list(range(parameter.low, parameter.high + 1, parameter.step))
    if parameter.step is None:
        return None
    count = math.floor((parameter.high - parameter.low) / parameter.step + 1e-9) + 1
    return [parameter.low + i * parameter.step for i in range(min(count, MAX_GRID + 1))]


def grid_size(parameters: dict[str, Parameter]) -> int:
    """How many points the grid sampler can visit; BadInput when a parameter is continuous or the grid
    is too large to enumerate."""
    size = 1
    for name, parameter in parameters.items():
        values = grid_values(parameter)
        if values is None:
            raise _bad(f"space.{name}.step", "the grid sampler needs a step for every float parameter")
        size *= len(values)
        if size > MAX_GRID:
            raise _bad("space", f"the grid has more than {MAX_GRID} points: use another sampler")
    return size


def extremes(parameter: Parameter) -> list[Any]:
    """Values a trial may be given that the workflow's parameter schema should accept: the bounds, or
    every choice."""
    if isinstance(parameter, CategoricalParameter):
        return list(parameter.choices)
    return [parameter.low, parameter.high]


def _parameter(name: Any, spec: Any) -> Parameter:
    if not isinstance(name, str) or not name or len(name) > 100:
        raise _bad("space", f"parameter names are 1-100 characters, not {name!r}")
    path = f"space.{name}"
    if not isinstance(spec, dict):
        raise _bad(path, "a parameter is a JSON object with a 'type'")
    kind = spec.get("type")
    if kind not in _KEYS:
        raise _bad(f"{path}.type", "the type is 'float', 'int' or 'categorical'")
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        raise _bad(f"{path}.{unknown[0]}", f"a {kind} parameter has no {unknown[0]!r}")
    if kind == "categorical":
        return _categorical(name, path, spec.get("choices"))
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise _bad(f"{path}.log", "log is true or false")
    if kind == "int":
        return _int(name, path, spec, log)
    return _float(name, path, spec, log)


def _float(name: str, path: str, spec: dict[str, Any], log: bool) -> FloatParameter:
    low, high = _number(spec, path, "low"), _number(spec, path, "high")
    if low > high:
        raise _bad(f"{path}.high", "high must not be below low")
    if log and low <= 0:
        raise _bad(f"{path}.low", "a log-scaled parameter needs low > 0")
    step = None
    if spec.get("step") is not None:
        step = _number(spec, path, "step")
        if step <= 0:
            raise _bad(f"{path}.step", "step must be positive")
        if log:
            raise _bad(f"{path}.step", "a parameter cannot have both a step and a log scale")
    return FloatParameter(name, low, high, log, step)


def _int(name: str, path: str, spec: dict[str, Any], log: bool) -> IntParameter:
    low, high = _integer(spec, path, "low"), _integer(spec, path, "high")
    if low > high:
        raise _bad(f"{path}.high", "high must not be below low")
    if log and low < 1:
        raise _bad(f"{path}.low", "a log-scaled parameter needs low >= 1")
    step = 1 if spec.get("step") is None else _integer(spec, path, "step")
    if step < 1:
        raise _bad(f"{path}.step", "step must be at least 1")
    if log and step != 1:
        raise _bad(f"{path}.step", "a parameter cannot have both a step and a log scale")
    return IntParameter(name, low, high, log, step)


def _categorical(name: str, path: str, choices: Any) -> CategoricalParameter:
    if not isinstance(choices, list) or not choices:
        raise _bad(f"{path}.choices", "choices is a non-empty list")
    if len(choices) > MAX_CHOICES:
        raise _bad(f"{path}.choices", f"at most {MAX_CHOICES} choices")
    for i, choice in enumerate(choices):
        if choice is not None and not isinstance(choice, str | int | float | bool):
            raise _bad(f"{path}.choices.{i}", "a choice is a string, a number, a boolean or null")
    if len({repr(c) for c in choices}) != len(choices):
        raise _bad(f"{path}.choices", "choices must not repeat")
    return CategoricalParameter(name, tuple(choices))


def _number(spec: dict[str, Any], path: str, key: str) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"{path}.{key}", f"{key} must be a finite number")
    return float(value)


def _integer(spec: dict[str, Any], path: str, key: str) -> int:
    value = spec.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{path}.{key}", f"{key} must be an integer")
    return value


def _bad(path: str, message: str) -> BadInput:
    return BadInput(f"{path}: {message}", field="space", path=path)
