"""The ``ptw-tuner`` built-in workflow: measure a workflow's training step under each variant, pick the best.

Entrypoint ``executors.tuning.tuner:tune``. Params (see ``BUILTINS``): target, target_params, variants, steps,
warmup, tolerance, low_precision_tolerance, batch_sizes, threads. The baseline ``eager-fp32`` is built and
timed first and kept: each variant's rounds alternate with rounds of the baseline, and its speedup compares
neighbouring rounds, so a machine that got busier or quieter during the job does not flatter or penalize a
variant (see ``measure``). Progress: ``variants_planned`` at step 0, then ``variant_index``,
``throughput`` and ``speedup`` logged at step = the variant's index (0 is the baseline), one line per variant
on stdout, and ``best_speedup`` at the end. ``ctx.cancelled`` is checked between steps and variants; a
cancelled tuning returns what it measured so far. The summary is described in ``tune``.
"""

from __future__ import annotations

import gc
import importlib
import statistics
import traceback
from dataclasses import dataclass
from typing import Any

import torch

from ptw.executors.tuning.measure import (
    Cancelled,
    Measurement,
    TrainingStep,
    TuningTarget,
    measure,
    measure_baseline,
)
from ptw.executors.tuning.variants import (
    BASELINE,
    Skipped,
    StepConfig,
    Variant,
    combine,
    cuda_features,
    plan,
    wants_combined,
)
from ptw.executors.workflows import BUILTINS, defaults_of

HOOK = "tuning_target"


@dataclass
class Outcome:
    variant: Variant
    tolerance: float
    measurement: Measurement | None = None
    error: str | None = None

    @property
    def within_tolerance(self) -> bool:
        return self.measurement is not None and self.measurement.max_abs_diff <= self.tolerance

    @property
    def speedup(self) -> float:
        return self.measurement.speedup if self.measurement is not None else float("nan")


def resolve_target(target: str) -> TuningTarget:
    """A built-in workflow's name (its module's ``tuning_target``) or an entrypoint ``pkg.mod:function``."""
    if ":" in target:
        module_name, _, function_name = target.partition(":")
    else:
        entrypoints = {b["name"]: b["entrypoint"] for b in BUILTINS}
        if target not in entrypoints:
            raise ValueError(
                f"no built-in workflow is named {target!r}; give an entrypoint 'pkg.module:function'"
            )
        module_name, function_name = entrypoints[target].partition(":")[0], HOOK
    function = getattr(importlib.import_module(module_name), function_name, None)
    if not callable(function):
        raise ValueError(f"{target!r} has no tuning hook: {module_name}.{function_name} is not a function")
    return function  # type: ignore[no-any-return]


def tune(ctx: Any) -> dict[str, Any]:
    """Returns ``{target, device, baseline, best, best_speedup, tolerance, variants, skipped}``.

    Each of ``variants``: ``{name, config, state: COMPLETE | FAILED, value: samples/s or None, metrics:
    {throughput, step_ms_p50, peak_memory_mb, max_abs_diff, output_max_abs_diff, speedup, tolerance
    [, compile_s]}, error}``.
    ``best`` is the fastest complete variant whose max_abs_diff is within its tolerance (the baseline when
    no variant beats it). ``skipped``: requested variants that do not apply here, with the reason.
    """
    params = {**defaults_of("ptw-tuner"), **ctx.params}
    device = torch.device(ctx.device)
    target = resolve_target(params["target"])
    target_params = dict(params["target_params"])
    if ":" not in params["target"]:
        unknown = set(target_params) - set(defaults_of(params["target"]))
        if unknown:
            raise ValueError(f"{params['target']} has no params {sorted(unknown)}")
        target_params = {**defaults_of(params["target"]), **target_params}
    budget = {"steps": params["steps"], "warmup": params["warmup"]}
    tolerances = (params["tolerance"], params["low_precision_tolerance"])
    cancelled = lambda: bool(ctx.cancelled)  # noqa: E731 - read at every step

    base_size = int(target_params.get("batch_size") or 0) or _batch_size_of(target, target_params, device)
    threads = None if device.type == "cuda" else torch.get_num_threads()
    base_config = StepConfig(batch_size=base_size, threads=threads)
    base_step, base_memory = measure_baseline(
        target, target_params, base_config, device, **budget, cancelled=cancelled
    )
    variants, skipped = plan(
        base_config,
        device_type=device.type,
        input_dims=base_step.reference.inputs.dim(),
        requested=params["variants"],
        batch_sizes=params["batch_sizes"],
        threads=params["threads"],
        cuda=cuda_features() if device.type == "cuda" else (False, False),
    )
    # How many variants follow the baseline, so that a watcher can tell how far the job has come.
    ctx.log({"variants_planned": float(len(variants))}, 0)
    _progress(ctx, 0, _baseline_outcome(base_step, base_memory, tolerances[0]))
    outcomes: list[Outcome] = []

    def run(variant: Variant) -> None:
        if ctx.cancelled:
            raise Cancelled
        outcome = Outcome(variant, tolerances[variant.config.low_precision])
        try:
            outcome.measurement = measure(
                target, target_params, variant.config, base_step, **budget, cancelled=cancelled
            )
        except Cancelled:
            raise
        except Exception as exc:  # a variant that fails is a result; the job goes on
            outcome.error = "".join(traceback.format_exception_only(exc)).strip()
        gc.collect()
        outcomes.append(outcome)
        _progress(ctx, len(outcomes), outcome)

    try:
        for variant in variants:
            run(variant)
        combined = combine(base_config, [(o.variant, o.speedup) for o in outcomes if o.within_tolerance])
        if combined is not None and wants_combined(params["variants"]):
            run(combined)
    except Cancelled:
        print("tuning cancelled: returning the variants measured so far", flush=True)
    baseline = _baseline_outcome(base_step, base_memory, tolerances[0])
    base_step.close()
    return _summary(params["target"], device, [baseline, *outcomes], skipped, tolerances, ctx)


def _baseline_outcome(step: TrainingStep, peak_memory_mb: float, tolerance: float) -> Outcome:
    """The baseline over every step it took in the job: its first timing and the rounds beside variants."""
    median = statistics.median(step.times)
    throughput = step.config.batch_size / median
    measurement = Measurement(throughput, median * 1000, peak_memory_mb, 0.0, 0.0, None, 1.0)
    return Outcome(Variant(BASELINE, step.config), tolerance, measurement)


def _progress(ctx: Any, index: int, outcome: Outcome) -> None:
    measured = outcome.measurement
    name = outcome.variant.name
    if measured is None:
        ctx.log({"variant_index": float(index)}, index)
        print(f"[{index}] {name}: FAILED: {outcome.error}", flush=True)
        return
    ctx.log(
        {"variant_index": float(index), "throughput": measured.throughput, "speedup": measured.speedup}, index
    )
    mark = "" if outcome.within_tolerance else f"  (beyond tolerance {outcome.tolerance:g})"
    print(
        f"[{index}] {name}: {measured.throughput:.0f} samples/s, {measured.speedup:.2f}x, "
        f"p50 {measured.step_ms_p50:.2f} ms, max_abs_diff {measured.max_abs_diff:.2e}{mark}",
        flush=True,
    )


def _summary(
    target: str,
    device: torch.device,
    outcomes: list[Outcome],
    skipped: list[Skipped],
    tolerances: tuple[float, float],
    ctx: Any,
) -> dict[str, Any]:
    rows = []
    for outcome in outcomes:
        row: dict[str, Any] = {"name": outcome.variant.name, "config": outcome.variant.config.as_dict()}
        if outcome.measurement is None:
            row |= {"state": "FAILED", "value": None, "metrics": {}, "error": outcome.error}
        else:
            metrics = outcome.measurement.metrics() | {"tolerance": outcome.tolerance}
            value = outcome.measurement.throughput
            row |= {"state": "COMPLETE", "value": value, "metrics": metrics, "error": None}
        rows.append(row)
    best = max((o for o in outcomes if o.within_tolerance), key=lambda o: o.speedup)
    ctx.log({"best_speedup": best.speedup}, len(outcomes))
    print(f"best: {best.variant.name} at {best.speedup:.2f}x the {BASELINE} baseline", flush=True)
    return {
        "target": target,
        "device": str(device),
        "baseline": BASELINE,
        "best": best.variant.name,
        "best_speedup": best.speedup,
        "tolerance": {"fp32": tolerances[0], "low_precision": tolerances[1]},
        "variants": rows,
        "skipped": [{"name": s.name, "reason": s.reason} for s in skipped],
    }


def _batch_size_of(target: TuningTarget, target_params: dict[str, Any], device: torch.device) -> int:
    """The batch size of a hook whose params have none: the first dimension of the batch it gives."""
    _, (inputs, _), _ = target(target_params, device)
    return int(inputs.shape[0])
