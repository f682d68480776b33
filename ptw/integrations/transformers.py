"""A Hugging Face ``transformers`` ``TrainerCallback`` that tracks the Trainer's run with ``ptw.init``:

    from transformers import Trainer
    from ptw.integrations.transformers import PtwCallback

    trainer = Trainer(model, args, train_dataset=..., callbacks=[PtwCallback(project="research")])

The run starts with the training (its params: the ``TrainingArguments`` that matter and the model's
config), every ``logs`` dict the Trainer reports is logged at its global step, saved checkpoints are
listed in the summary with the final metrics, and the run ends SUCCEEDED when training ends (FAILED with
the traceback, or CANCELLED on Ctrl-C, when the exception goes through a ``with`` or the interpreter
exits: see ``ptw.init``). Only the main process (world process zero) tracks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from transformers import TrainerCallback

import ptw.tracking

_ARGS = (
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "weight_decay",
    "warmup_steps",
    "lr_scheduler_type",
    "seed",
    "optim",
)


class PtwCallback(TrainerCallback):  # type: ignore[misc]
    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        tags: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        **init_options: Any,
    ) -> None:
        self._project, self._name, self._tags = project, name, list(tags)
        self._params = dict(params or {})
        self._init_options = init_options
        self.run: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self.run is not None:
            return
        params = {name: getattr(args, name) for name in _ARGS if hasattr(args, name)}
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "to_dict"):
            params["model"] = {
                k: v for k, v in config.to_dict().items() if isinstance(v, bool | int | float | str)
            }
        params.update(self._params)
        self.run = ptw.tracking.init(
            project=self._project, name=self._name, params=params, tags=self._tags, **self._init_options
        )

    def on_log(
        self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if self.run is None or not logs:
            return
        values = {
            k: float(v)
            for k, v in logs.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
        }
        if values:
            self.run.log(values, step=int(state.global_step))
            self.run.summary.update(values)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run is None:
            return
        saved = self.run.summary.setdefault("checkpoints", [])
        saved.append(
            {"step": int(state.global_step), "dir": f"{args.output_dir}/checkpoint-{state.global_step}"}
        )
        if state.best_model_checkpoint:
            self.run.summary["best_checkpoint"] = state.best_model_checkpoint

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run is not None:
            self.run.summary["global_step"] = int(state.global_step)
            self.run.finish("SUCCEEDED")
