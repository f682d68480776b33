"""A PyTorch Lightning ``Logger`` that tracks the Trainer's run with ``ptw.init``:

    from lightning import Trainer
    from ptw.integrations.lightning import PtwLogger

    trainer = Trainer(logger=PtwLogger(project="research", name="resnet-3", tags=["lightning"]))

Metrics go through ``run.log`` (batched, non-blocking), hyperparameters become the run's params (and are
kept in its summary under ``hparams``, since they are known only after the run started), saved
checkpoints are listed in the summary, and the run ends SUCCEEDED, FAILED or CANCELLED with the fit.
Inside our executors the run being executed is used instead (see ``ptw.init``)."""

from __future__ import annotations

import math
from argparse import Namespace
from collections.abc import Mapping, Sequence
from typing import Any

from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

import ptw.tracking

_STATUS = {"success": "SUCCEEDED", "finished": "SUCCEEDED", "failed": "FAILED", "interrupted": "CANCELLED"}


class PtwLogger(Logger):
    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        tags: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        **init_options: Any,
    ) -> None:
        super().__init__()
        self._project, self._name, self._tags = project, name, list(tags)
        self._params = dict(params or {})
        self._init_options = init_options
        self._run: Any = None
        self._checkpoints: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return self._name or "ptw"

    @property
    def version(self) -> str:
        return self.experiment.short_id if self._run is not None else "0"

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The tracked run (``ptw.init``'s answer), started on first use."""
        if self._run is None:
            self._run = ptw.tracking.init(
                project=self._project,
                name=self._name,
                params=self._params,
                tags=self._tags,
                **self._init_options,
            )
        return self._run

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params)
        plain = {str(k): _plain(v) for k, v in values.items()}
        self.experiment.summary["hparams"] = plain
        self.experiment.params.update(plain)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        finite = {k: float(v) for k, v in metrics.items() if _number(v) and math.isfinite(float(v))}
        if finite:
            self.experiment.log(finite, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        best = getattr(checkpoint_callback, "best_model_path", None)
        last = getattr(checkpoint_callback, "last_model_path", None) or best
        if last:
            self._checkpoints.append({"path": str(last), "step": self._step_of(checkpoint_callback)})
            self.experiment.summary["checkpoints"] = self._checkpoints[-20:]
        if best:
            self.experiment.summary["best_checkpoint"] = str(best)
            score = getattr(checkpoint_callback, "best_model_score", None)
            if score is not None:
                self.experiment.summary["best_score"] = float(score)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._run is not None:
            self._run.finish(_STATUS.get(status, "SUCCEEDED"))

    @staticmethod
    def _step_of(checkpoint_callback: Any) -> int | None:
        trainer = getattr(checkpoint_callback, "_trainer", None)
        return getattr(trainer, "global_step", None)


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
