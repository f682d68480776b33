"""The built-in workflows run through a recording stand-in for the RunContext; their parameter schemas."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch
from jsonschema import Draft202012Validator

from ptw.executors.workflows import BUILTINS, defaults_of, digits_cnn, digits_mlp, tiny_lm

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_CNN = {"epochs": 2, "channels": 4}
TINY_LM = {"steps": 12, "d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16, "batch_size": 4}


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


class RecordingContext:
    """Records what a workflow tells the RunContext; prunes or cancels on cue."""

    def __init__(
        self,
        workflow: str,
        params: dict[str, Any] | None = None,
        checkpoint: Any = None,
        prune_after_reports: int | None = None,
        cancel_on_read: int | None = None,
    ) -> None:
        self.params = {**defaults_of(workflow), **(params or {})}
        self.device = torch.device("cpu")
        self.run_id, self.attempt = "run-1", 1
        self.logged: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.reports: list[tuple[float, int]] = []
        self.named: dict[str | None, list[int]] = {}
        self.checkpoints: list[tuple[Any, int | None]] = []
        self._checkpoint = checkpoint
        self._prune_after = prune_after_reports
        self._cancel_on_read = cancel_on_read
        self._cancel_reads = 0

    def log(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            assert isinstance(value, float), (key, value)
            self.logged[key].append((step, value))

    def report(self, value: float, step: int, metric: str | None = None) -> None:
        if metric == "val_accuracy":  # one report per epoch counts toward pruning here
            self.reports.append((value, step))
        self.named.setdefault(metric, []).append(step)

    def should_prune(self) -> bool:
        return self._prune_after is not None and len(self.reports) >= self._prune_after

    def save_checkpoint(self, state: Any, step: int | None = None) -> None:
        # Serialized as the SDK would, so a state that torch cannot save safely fails here.
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        self.checkpoints.append((torch.load(buffer, weights_only=True), step))

    def load_checkpoint(self) -> Any:
        return self._checkpoint

    @property
    def cancelled(self) -> bool:
        self._cancel_reads += 1
        return self._cancel_on_read is not None and self._cancel_reads >= self._cancel_on_read

    def steps(self, key: str) -> list[int]:
        return [step for step, _ in self.logged[key]]


def _validator(name: str) -> Draft202012Validator:
    (builtin,) = [b for b in BUILTINS if b["name"] == name]
    return Draft202012Validator(builtin["params_schema"])


EXECUTED = [b for b in BUILTINS if b["name"] != "external"]  # external runs carry any params


@pytest.mark.parametrize("builtin", EXECUTED, ids=lambda b: b["name"])
def test_builtin_defaults_match_their_schema_and_entrypoints_resolve(builtin: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(builtin["params_schema"])
    assert builtin["params_schema"]["additionalProperties"] is False
    Draft202012Validator(builtin["params_schema"]).validate(builtin["defaults"])
    assert set(builtin["defaults"]) == set(builtin["params_schema"]["properties"])
    assert builtin["gpus"] == 0
    module, function = builtin["entrypoint"].split(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_builtin_names() -> None:
    names = [b["name"] for b in BUILTINS]
    assert names == ["digits-mlp", "digits-cnn", "digits-ddp", "tiny-lm", "ptw-tuner", "external"]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("digits-mlp", {"optimizer": "rmsprop"}),
        ("digits-mlp", {"lr": 0}),
        ("digits-mlp", {"hidden": "64"}),
        ("digits-mlp", {"dropout": 1.0}),
        ("digits-mlp", {"learning_rate": 0.1}),
        ("digits-cnn", {"channels": 0}),
        ("digits-cnn", {"epochs": 2.5}),
        ("tiny-lm", {"n_heads": 3}),
        ("tiny-lm", {"d_model": 60}),
        ("tiny-lm", {"steps": 0}),
    ],
)
def test_bad_params_are_rejected(name: str, params: dict[str, Any]) -> None:
    assert not _validator(name).is_valid({**defaults_of(name), **params})


def test_long_tiny_lm_run_is_valid() -> None:
    assert _validator("tiny-lm").is_valid({**defaults_of("tiny-lm"), "steps": 100_000})


def test_reading_builtins_does_not_import_torch() -> None:
    probe = "import sys, executors.workflows; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, timeout=30).returncode == 0


def test_digits_mlp_defaults_reach_90_percent_and_log_every_step() -> None:
    ctx = RecordingContext("digits-mlp")
    summary = digits_mlp.train(ctx)

    assert summary["val_accuracy"] > 0.9
    assert summary["epochs"] == 20
    assert set(summary) == {"val_accuracy", "val_loss", "epochs", "train_seconds"}
    train_steps = ctx.steps("train_loss")
    assert train_steps == list(range(1, len(train_steps) + 1))
    epoch_ends = ctx.steps("val_accuracy")
    assert len(epoch_ends) == 20 and epoch_ends == ctx.steps("val_loss")
    assert epoch_ends == sorted(set(epoch_ends)) and epoch_ends[-1] == train_steps[-1]
    assert [epoch for _, epoch in ctx.reports] == list(range(1, 21))
    assert ctx.named == {"val_accuracy": list(range(1, 21)), "val_loss": list(range(1, 21))}
    assert [state["epoch"] for state, _ in ctx.checkpoints] == [5, 10, 15, 20]
    assert ctx.logged["train_loss"][-1][1] < ctx.logged["train_loss"][0][1]


def test_digits_mlp_resumes_where_its_checkpoint_left_off() -> None:
    params = {"epochs": 7}
    whole = RecordingContext("digits-mlp", params)
    expected = digits_mlp.train(whole)
    (state, saved_step), _ = whole.checkpoints  # after epochs 5 and 7
    assert saved_step is not None

    resumed = RecordingContext("digits-mlp", params, checkpoint=state)
    summary = digits_mlp.train(resumed)

    assert resumed.steps("train_loss")[0] == saved_step + 1
    assert [epoch for _, epoch in resumed.reports] == [6, 7]
    assert resumed.steps("val_loss") == whole.steps("val_loss")[5:]
    # Same batches in the same order from the same weights: the same model as the uninterrupted run.
    assert summary["val_loss"] == pytest.approx(expected["val_loss"], rel=1e-4)


def test_digits_mlp_stops_when_pruned() -> None:
    ctx = RecordingContext("digits-mlp", prune_after_reports=2)
    summary = digits_mlp.train(ctx)
    assert summary["epochs"] == 2
    assert len(ctx.reports) == 2 and len(ctx.logged["val_accuracy"]) == 2


def test_digits_mlp_checkpoints_and_returns_when_cancelled() -> None:
    ctx = RecordingContext("digits-mlp", cancel_on_read=1)
    summary = digits_mlp.train(ctx)
    assert summary["epochs"] == 1
    assert [state["epoch"] for state, _ in ctx.checkpoints] == [1]


def test_digits_cnn_logs_the_digits_metrics() -> None:
    ctx = RecordingContext("digits-cnn", TINY_CNN)
    summary = digits_cnn.train(ctx)
    assert summary["epochs"] == 2 and 0.0 <= summary["val_accuracy"] <= 1.0
    train_steps = ctx.steps("train_loss")
    assert train_steps == list(range(1, len(train_steps) + 1))
    assert len(ctx.steps("val_loss")) == 2 and ctx.steps("val_accuracy")[-1] == train_steps[-1]
    assert [epoch for _, epoch in ctx.reports] == [1, 2]


def test_tiny_lm_logs_loss_every_step_and_throughput() -> None:
    ctx = RecordingContext("tiny-lm", TINY_LM)
    summary = tiny_lm.train(ctx)
    assert summary["steps"] == 12
    assert ctx.steps("loss") == list(range(1, 13))
    assert ctx.steps("tokens_per_s") == [10]
    assert summary["loss"] == ctx.logged["loss"][-1][1]


def test_tiny_lm_resumes_from_its_step_checkpoint() -> None:
    params = {**TINY_LM, "steps": 105}
    whole = RecordingContext("tiny-lm", params)
    tiny_lm.train(whole)
    ((state, saved_step),) = whole.checkpoints
    assert saved_step == state["step"] == 100

    resumed = RecordingContext("tiny-lm", params, checkpoint=state)
    tiny_lm.train(resumed)
    assert resumed.steps("loss") == [101, 102, 103, 104, 105]
    expected = [value for _, value in whole.logged["loss"][100:]]
    assert [value for _, value in resumed.logged["loss"]] == pytest.approx(expected, rel=1e-4)


def test_tiny_lm_returns_early_when_cancelled() -> None:
    ctx = RecordingContext("tiny-lm", {**TINY_LM, "steps": 100_000}, cancel_on_read=8)
    summary = tiny_lm.train(ctx)
    assert summary["steps"] == 7
    assert ctx.steps("loss") == list(range(1, 8))
    assert [step for _, step in ctx.checkpoints] == [7]


@pytest.mark.parametrize(
    ("module", "params", "input_shape"),
    [(digits_cnn, {"batch_size": 8, "channels": 4}, (8, 1, 16, 16)), (tiny_lm, TINY_LM, (4, 16))],
    ids=["digits-cnn", "tiny-lm"],
)
def test_tuning_target_gives_a_trainable_model_batch_and_loss(
    module: Any, params: dict[str, Any], input_shape: tuple[int, ...]
) -> None:
    model, (inputs, targets), loss_fn = module.tuning_target(params, torch.device("cpu"))
    assert tuple(inputs.shape) == input_shape and targets.shape[0] == input_shape[0]
    loss = loss_fn(model(inputs), targets)
    assert loss.dim() == 0
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
