"""The performance tuner: its variant plan, how variants combine, tunings through a stand-in context."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from ptw.executors.tuning import tuner
from ptw.executors.tuning.variants import COMBINED, StepConfig, Variant, combine, plan
from ptw.executors.workflows import BUILTINS, defaults_of

METRIC_KEYS = {
    "throughput", "step_ms_p50", "peak_memory_mb", "max_abs_diff", "output_max_abs_diff", "speedup",
    "tolerance",
}  # fmt: skip
# Few, short steps on a narrow net: each variant takes well under a second.
QUICK = {"steps": 6, "warmup": 1, "target_params": {"channels": 4, "batch_size": 16}}


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


class TuningContext:
    """What ``tune`` uses of the RunContext; records the logged points; cancels once some variants logged
    (the baseline included)."""

    def __init__(self, params: dict[str, Any], cancel_after_variants: int | None = None) -> None:
        self.params = {**defaults_of("ptw-tuner"), **params}
        self.device = torch.device("cpu")
        self.logged: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._cancel_after = cancel_after_variants

    def log(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            assert isinstance(value, float), (key, value)
            self.logged[key].append((step, value))

    @property
    def cancelled(self) -> bool:
        return self._cancel_after is not None and len(self.logged["variant_index"]) >= self._cancel_after


def by_name(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in summary["variants"]}


# --- the plan ------------------------------------------------------------------------------------------


def names(variants: list[Variant]) -> list[str]:
    return [v.name for v in variants]


def test_the_default_cpu_plan_tries_every_cpu_variant_but_max_autotune() -> None:
    baseline = StepConfig(batch_size=64, threads=1)
    variants, skipped = plan(
        baseline, device_type="cpu", input_dims=4, requested=None, batch_sizes=None, threads=(1, 2)
    )
    assert names(variants) == [
        "compile", "amp-bf16", "channels-last", "batch-size-128", "batch-size-256", "threads-2"
    ]  # fmt: skip
    assert skipped == []
    assert variants[1].config == StepConfig(batch_size=64, threads=1, amp="bf16")
    assert variants[-1].config == StepConfig(batch_size=64, threads=2)


def test_the_default_gpu_plan_adds_fp16_tf32_and_max_autotune_and_leaves_threads_alone() -> None:
    baseline = StepConfig(batch_size=16, threads=None)
    variants, _ = plan(
        baseline, device_type="cuda", input_dims=2, requested=None, batch_sizes=[16, 32], threads=None,
        cuda=(True, True),
    )  # fmt: skip
    assert names(variants) == [
        "compile",
        "compile-max-autotune",
        "amp-bf16",
        "amp-fp16",
        "tf32",
        "batch-size-32",
    ]


def test_requested_variants_that_do_not_apply_are_skipped_with_a_reason() -> None:
    baseline = StepConfig(batch_size=8, threads=2)
    variants, skipped = plan(
        baseline, device_type="cpu", input_dims=2,
        requested=["compile-max-autotune", "tf32", "channels-last"], batch_sizes=None, threads=None,
    )  # fmt: skip
    assert names(variants) == ["compile-max-autotune"]  # listed, so tried even on the CPU
    assert [s.name for s in skipped] == ["tf32", "channels-last"]
    assert "2-D" in skipped[1].reason


def test_combine_stacks_the_fastest_change_of_each_setting() -> None:
    baseline = StepConfig(batch_size=64, threads=1)
    winners = [
        (Variant("channels-last", StepConfig(64, 1, channels_last=True)), 1.4),
        (Variant("batch-size-128", StepConfig(128, 1)), 1.1),
        (Variant("batch-size-256", StepConfig(256, 1)), 1.2),
        (Variant("compile", StepConfig(64, 1, compile="default")), 1.01),  # within the noise: left out
    ]
    combined = combine(baseline, winners)
    assert combined == Variant(COMBINED, StepConfig(256, 1, channels_last=True))
    assert combine(baseline, winners[:1]) is None  # one change is a variant already measured


# --- tuning digits-cnn ---------------------------------------------------------------------------------


def test_tuning_digits_cnn_measures_every_variant_against_the_baseline() -> None:
    params = {**QUICK, "variants": ["channels-last", "amp-bf16", "batch-size", "threads"], "threads": [2]}
    ctx = TuningContext(params)
    summary = tuner.tune(ctx)

    rows = by_name(summary)
    singles = ["eager-fp32", "channels-last", "amp-bf16", "batch-size-32", "batch-size-64", "threads-2"]
    assert list(rows)[:6] == singles and list(rows)[6:] in ([], [COMBINED])  # combined: if two changes won
    assert summary["target"] == "digits-cnn" and summary["device"] == "cpu"
    assert summary["baseline"] == "eager-fp32" and summary["skipped"] == []
    for row in summary["variants"]:
        assert row["state"] == "COMPLETE", row["error"]
        assert set(row["metrics"]) == METRIC_KEYS and row["value"] == row["metrics"]["throughput"] > 0
    base = rows["eager-fp32"]
    assert base["metrics"]["speedup"] == 1.0 and base["metrics"]["max_abs_diff"] == 0.0
    assert base["config"] == {
        "batch_size": 16, "threads": 1, "compile": None, "amp": None, "channels_last": False, "tf32": False
    }  # fmt: skip
    # fp32 variants compute the same function; bf16 rounds, within its looser tolerance.
    for fp32 in ("channels-last", "batch-size-64", "threads-2"):
        assert (
            rows[fp32]["metrics"]["max_abs_diff"] < 1e-5
            and rows[fp32]["metrics"]["output_max_abs_diff"] < 1e-4
        )
        assert rows[fp32]["metrics"]["tolerance"] == 1e-3
    assert 0 < rows["amp-bf16"]["metrics"]["max_abs_diff"] < 1e-2
    assert 0 < rows["amp-bf16"]["metrics"]["output_max_abs_diff"] < 1e-1
    assert rows["amp-bf16"]["metrics"]["tolerance"] == 1e-2
    assert rows["threads-2"]["config"]["threads"] == 2 and torch.get_num_threads() == 1  # restored
    best = rows[summary["best"]]["metrics"]
    assert (
        summary["best_speedup"]
        == best["speedup"]
        == max(r["metrics"]["speedup"] for r in summary["variants"])
    )
    # Live progress: one point per variant at its index, the baseline's logged last at index 0.
    assert sorted(step for step, _ in ctx.logged["variant_index"]) == list(range(len(rows)))
    assert ctx.logged["best_speedup"] == [(len(rows), summary["best_speedup"])]


def test_a_variant_that_raises_is_failed_and_the_others_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_compiler(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("inductor needs a C++ compiler")

    monkeypatch.setattr(torch, "compile", no_compiler)
    summary = tuner.tune(TuningContext({**QUICK, "variants": ["compile", "channels-last"]}))

    rows = by_name(summary)
    assert rows["compile"]["state"] == "FAILED" and rows["compile"]["value"] is None
    assert rows["compile"]["error"] == "RuntimeError: inductor needs a C++ compiler"
    assert rows["compile"]["metrics"] == {}
    assert rows["eager-fp32"]["state"] == rows["channels-last"]["state"] == "COMPLETE"
    assert summary["best"] in {"eager-fp32", "channels-last"}


class Wobbly(nn.Module):
    """Slow in fp32, fast but wrong under autocast: the tuner must not call it the best."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_autocast_enabled("cpu"):
            return self.linear(x) * 3.0
        time.sleep(0.004)
        return self.linear(x)


def wobbly_target(
    params: dict[str, Any], device: torch.device
) -> tuple[nn.Module, tuple[Tensor, Tensor], Any]:
    torch.manual_seed(0)
    size = params.get("batch_size", 8)
    batch = (torch.randn(size, 4, device=device), torch.randint(3, (size,), device=device))
    return Wobbly().to(device), batch, nn.functional.cross_entropy


def test_the_best_variant_is_the_fastest_within_its_tolerance() -> None:
    ctx = TuningContext(
        {"target": f"{__name__}:wobbly_target", "variants": ["amp-bf16"], "steps": 6, "warmup": 1}
    )
    summary = tuner.tune(ctx)

    amp = by_name(summary)["amp-bf16"]["metrics"]
    assert amp["speedup"] > 2 and amp["max_abs_diff"] > 0.1
    assert summary["best"] == "eager-fp32" and summary["best_speedup"] == 1.0
    assert [row["name"] for row in summary["variants"]] == ["eager-fp32", "amp-bf16"]  # no combined of one


def test_a_cancelled_tuning_returns_what_it_measured() -> None:
    ctx = TuningContext({**QUICK, "variants": ["channels-last", "batch-size"]}, cancel_after_variants=2)
    summary = tuner.tune(ctx)
    assert [row["name"] for row in summary["variants"]] == ["eager-fp32", "channels-last"]
    assert summary["best"] in {"eager-fp32", "channels-last"}


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no-such-workflow", "no built-in workflow is named 'no-such-workflow'"),
        ("digits-mlp", "'digits-mlp' has no tuning hook"),
        ("ptw.executors.workflows.tiny_lm:LOG_EVERY", "is not a function"),
    ],
)
def test_a_target_without_a_tuning_hook_fails_the_tuning(target: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tuner.tune(TuningContext({"target": target}))


def test_unknown_target_params_fail_the_tuning() -> None:
    with pytest.raises(ValueError, match=r"digits-cnn has no params \['chanels'\]"):
        tuner.tune(TuningContext({"target_params": {"chanels": 4}}))


def test_the_tuner_is_a_builtin_with_a_closed_schema() -> None:
    (builtin,) = [b for b in BUILTINS if b["name"] == "ptw-tuner"]
    assert builtin["entrypoint"] == "ptw.executors.tuning.tuner:tune"
    assert set(builtin["defaults"]) == set(builtin["params_schema"]["properties"])
