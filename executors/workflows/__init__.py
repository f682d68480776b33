"""The built-in workflows every project sees: their entrypoints, parameter schemas and defaults.

This module is read by the API process, which must not import torch: only the workflow modules do.
Each entry of ``BUILTINS`` has the fields of ``domain.services.workflows.WorkflowSpec``.
"""

from __future__ import annotations

import copy
from typing import Any

from ptw.executors.tuning.variants import KINDS as _TUNING_VARIANTS  # data only: no torch

_SEED = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_LR = {"type": "number", "exclusiveMinimum": 0, "maximum": 10}
_OPTIMIZER = {"type": "string", "enum": ["adam", "sgd"]}
_WEIGHT_DECAY = {"type": "number", "minimum": 0, "maximum": 1}
_BATCH_SIZE = {"type": "integer", "minimum": 1, "maximum": 4096}


def _schema(title: str, properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


BUILTINS: list[dict[str, Any]] = [
    {
        "name": "digits-mlp",
        "entrypoint": "ptw.executors.workflows.digits_mlp:train",
        "params_schema": _schema(
            "digits-mlp: an MLP on scikit-learn's 8x8 digits",
            {
                "lr": _LR,
                "hidden": {"type": "integer", "minimum": 1, "maximum": 4096},
                "epochs": {"type": "integer", "minimum": 1, "maximum": 10_000},
                "batch_size": _BATCH_SIZE,
                "optimizer": _OPTIMIZER,
                "weight_decay": _WEIGHT_DECAY,
                "dropout": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                "seed": _SEED,
            },
        ),
        "defaults": {
            "lr": 0.01,
            "hidden": 64,
            "epochs": 20,
            "batch_size": 64,
            "optimizer": "adam",
            "weight_decay": 0.0,
            "dropout": 0.0,
            "seed": 0,
        },
        "gpus": 0,
        "timeout_seconds": 3600,
    },
    {
        "name": "digits-cnn",
        "entrypoint": "ptw.executors.workflows.digits_cnn:train",
        "params_schema": _schema(
            "digits-cnn: a small conv net on scikit-learn's digits, upsampled to 16x16",
            {
                "lr": _LR,
                "channels": {"type": "integer", "minimum": 1, "maximum": 512},
                "epochs": {"type": "integer", "minimum": 1, "maximum": 10_000},
                "batch_size": _BATCH_SIZE,
                "optimizer": _OPTIMIZER,
                "weight_decay": _WEIGHT_DECAY,
                "seed": _SEED,
            },
        ),
        "defaults": {
            "lr": 0.003,
            "channels": 16,
            "epochs": 10,
            "batch_size": 64,
            "optimizer": "adam",
            "weight_decay": 0.0,
            "seed": 0,
        },
        "gpus": 0,
        "timeout_seconds": 3600,
    },
    {
        "name": "digits-ddp",
        "entrypoint": "ptw.executors.workflows.digits_ddp:train",
        "params_schema": _schema(
            "digits-ddp: digits-mlp with DistributedDataParallel, the global batch shared by the ranks",
            {
                "lr": _LR,
                "hidden": {"type": "integer", "minimum": 1, "maximum": 4096},
                "epochs": {"type": "integer", "minimum": 1, "maximum": 10_000},
                "batch_size": _BATCH_SIZE,
                "optimizer": _OPTIMIZER,
                "weight_decay": _WEIGHT_DECAY,
                "seed": _SEED,
            },
        ),
        "defaults": {
            "lr": 0.01,
            "hidden": 64,
            "epochs": 20,
            "batch_size": 64,
            "optimizer": "adam",
            "weight_decay": 0.0,
            "seed": 0,
        },
        "gpus": 0,
        "processes_per_node": 2,
        "timeout_seconds": 3600,
    },
    {
        "name": "tiny-lm",
        "entrypoint": "ptw.executors.workflows.tiny_lm:train",
        "params_schema": _schema(
            "tiny-lm: a small GPT-style character language model on a generated corpus",
            {
                # 100000 steps must stay valid: the long-running run that cancellation is tested with.
                "steps": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
                # multipleOf 8 with n_heads in 1..8 keeps d_model divisible by n_heads.
                "d_model": {"type": "integer", "minimum": 8, "maximum": 1024, "multipleOf": 8},
                "n_layers": {"type": "integer", "minimum": 1, "maximum": 24},
                "n_heads": {"type": "integer", "enum": [1, 2, 4, 8]},
                "seq_len": {"type": "integer", "minimum": 2, "maximum": 1024},
                "batch_size": {"type": "integer", "minimum": 1, "maximum": 1024},
                "lr": _LR,
                "seed": _SEED,
            },
        ),
        "defaults": {
            "steps": 200,
            "d_model": 64,
            "n_layers": 2,
            "n_heads": 4,
            "seq_len": 64,
            "batch_size": 16,
            "lr": 3e-3,
            "seed": 0,
        },
        "gpus": 0,
        # None: a tiny-lm run may be as long as its steps ask for; cancelling it is how it ends early.
        "timeout_seconds": None,
    },
    {
        "name": "ptw-tuner",
        "entrypoint": "ptw.executors.tuning.tuner:tune",
        "params_schema": _schema(
            "ptw-tuner: a workflow's training throughput under compile, AMP, layouts, batch sizes, threads",
            {
                # A built-in's name (its tuning_target hook) or an entrypoint "pkg.module:tuning_target".
                "target": {"type": "string", "minLength": 1, "maxLength": 300},
                "target_params": {"type": "object"},
                # null: every variant that applies to the device (max-autotune on the CPU only when listed).
                "variants": {
                    "type": ["array", "null"],
                    "items": {"type": "string", "enum": list(_TUNING_VARIANTS)},
                    "uniqueItems": True,
                },
                "steps": {"type": "integer", "minimum": 1, "maximum": 100_000},
                "warmup": {"type": "integer", "minimum": 1, "maximum": 10_000},
                "tolerance": {"type": "number", "minimum": 0},
                "low_precision_tolerance": {"type": "number", "minimum": 0},
                # null: twice and four times the target's batch size; on the CPU, 1 and all cores.
                "batch_sizes": {"type": ["array", "null"], "items": _BATCH_SIZE, "uniqueItems": True},
                "threads": {
                    "type": ["array", "null"],
                    "items": {"type": "integer", "minimum": 1, "maximum": 1024},
                    "uniqueItems": True,
                },
            },
        ),
        "defaults": {
            "target": "digits-cnn",
            "target_params": {},
            "variants": None,
            "steps": 30,
            "warmup": 5,
            "tolerance": 1e-3,
            "low_precision_tolerance": 1e-2,
            "batch_sizes": None,
            "threads": None,
        },
        "gpus": 0,
        "timeout_seconds": 3600,
    },
]


BUILTINS.append(
    {
        "name": "external",
        "entrypoint": "ptw.executors.workflows.external:tracked_elsewhere",
        # Any params: they are the training script's own, recorded as it passed them to ptw.init().
        "params_schema": {"type": "object", "title": "external: runs tracked by ptw.init() in any process"},
        "defaults": {},
        "gpus": 0,
        "timeout_seconds": None,
    }
)


def defaults_of(name: str) -> dict[str, Any]:
    """A fresh copy of a built-in's defaults, for filling in params a caller left out."""
    for builtin in BUILTINS:
        if builtin["name"] == name:
            return copy.deepcopy(builtin["defaults"])
    raise KeyError(name)


__all__ = ["BUILTINS", "defaults_of"]
