"""Timing one variant's training step (forward, backward, optimizer step) and checking its numerics.

Each variant builds a fresh model from the workflow's tuning hook and loads the baseline's initial weights,
so every variant starts from the same weights. Its check is one forward pass on the baseline's batch (tiled
to the variant's batch size, so a compiled graph sees the shape it trains on) under the variant's settings;
``max_abs_diff`` is the absolute difference of its loss from the baseline's (what the tolerance bounds: a
loss has one scale whatever the model, logits do not), ``output_max_abs_diff`` the largest of the outputs'.
Then ``warmup`` steps (where torch.compile compiles) and ``steps`` timed steps on the hook's batch, in rounds
of ``ROUND_STEPS`` that alternate with rounds of the baseline's prepared step.

Throughput is ``batch_size`` divided by the median step time: the median rather than the mean, so a step
slowed by another process on the machine does not move the result. The speedup is the median over rounds of
the variant's throughput in a round over the baseline's in the round after it: each ratio compares two
neighbours in time, so load that comes and goes on a shared machine cancels out. Peak memory: see ``memory``.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ptw.executors.tuning.memory import PeakMemory
from ptw.executors.tuning.variants import StepConfig

TuningTarget = Callable[[dict[str, Any], torch.device], tuple[nn.Module, tuple[Tensor, Tensor], Any]]
LEARNING_RATE = 1e-3
CHECK_SEED = 1234  # seeds the check's forward pass, so models with dropout draw the same masks
ROUND_STEPS = 5  # short enough to pair up with the baseline finely, long enough for the caches to warm
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Cancelled(Exception):
    """The run was asked to stop while a variant was being measured."""


@dataclass
class Reference:
    """What the baseline leaves for every other variant: its weights, batch and check results."""

    initial_state: dict[str, Tensor]
    inputs: Tensor
    targets: Tensor
    outputs: Tensor | None = None
    loss: float = float("nan")


@dataclass
class Measurement:
    throughput: float
    step_ms_p50: float
    peak_memory_mb: float
    max_abs_diff: float
    output_max_abs_diff: float
    compile_s: float | None
    speedup: float

    def metrics(self) -> dict[str, float]:
        metrics = {
            "throughput": self.throughput,
            "step_ms_p50": self.step_ms_p50,
            "peak_memory_mb": self.peak_memory_mb,
            "max_abs_diff": self.max_abs_diff,
            "output_max_abs_diff": self.output_max_abs_diff,
            "speedup": self.speedup,
        }
        if self.compile_s is not None:
            metrics["compile_s"] = self.compile_s
        return metrics


class TrainingStep:
    """One variant's model, batch and optimizer, built, checked against the reference and ready to time."""

    def __init__(
        self,
        target: TuningTarget,
        target_params: dict[str, Any],
        config: StepConfig,
        device: torch.device,
        reference: Reference | None = None,
    ) -> None:
        self.config, self.device = config, device
        self.started = time.perf_counter()
        self.first_step_done: float | None = None
        self.times: list[float] = []
        with self.settings():
            model, (inputs, targets), loss_fn = target(
                {**target_params, "batch_size": config.batch_size}, device
            )
            if inputs.shape[0] != config.batch_size:
                raise ValueError(
                    f"the tuning target gave a batch of {inputs.shape[0]} for batch_size {config.batch_size}"
                )
            if reference is None:
                state = {key: value.detach().clone() for key, value in model.state_dict().items()}
                reference = Reference(state, inputs, targets)
            else:
                model.load_state_dict(reference.initial_state)
            self.reference = reference
            check_inputs = _tiled(reference.inputs, config.batch_size)
            if config.channels_last:
                model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
                inputs = inputs.contiguous(memory_format=torch.channels_last)
                check_inputs = check_inputs.contiguous(memory_format=torch.channels_last)
            self._inputs, self._targets, self._loss_fn = inputs, targets, loss_fn
            self._optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
            self._model = torch.compile(model, mode=config.compile) if config.compile else model
            self._scaler = torch.amp.GradScaler(device.type) if config.amp == "fp16" else None
            self.max_abs_diff, self.output_max_abs_diff = self._check(check_inputs)

    def run(self, count: int, cancelled: Callable[[], bool] = lambda: False) -> list[float]:
        """Take ``count`` training steps; the seconds each took, also kept in ``times``."""
        times = []
        with self.settings():
            for _ in range(count):
                if cancelled():
                    raise Cancelled
                began = time.perf_counter()
                loss = self._step()
                _synchronize(self.device)
                times.append(time.perf_counter() - began)
                if self.first_step_done is None:
                    self.first_step_done = time.perf_counter()
        if not torch.isfinite(loss.detach()).item():
            raise FloatingPointError(f"the training loss became {float(loss.detach())}")
        self.times += times
        return times

    @property
    def compile_s(self) -> float | None:
        """Building, checking and the first step: where torch.compile compiles the forward and backward."""
        if not self.config.compile or self.first_step_done is None:
            return None
        return self.first_step_done - self.started

    def close(self) -> None:
        if self.config.compile:
            torch._dynamo.reset()  # drops the compiled graphs and their guards before the next variant

    @contextlib.contextmanager
    def settings(self) -> Iterator[None]:
        """The variant's process-wide settings while it runs; the previous ones afterwards."""
        threads = torch.get_num_threads()
        matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
        cudnn_tf32 = torch.backends.cudnn.allow_tf32
        if self.config.threads is not None:
            torch.set_num_threads(self.config.threads)
        if self.device.type == "cuda":
            # cuDNN allows TF32 by default: the fp32 baseline must turn it off to be fp32.
            torch.backends.cuda.matmul.allow_tf32 = self.config.tf32
            torch.backends.cudnn.allow_tf32 = self.config.tf32
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
            torch.backends.cudnn.allow_tf32 = cudnn_tf32

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.config.amp])

    def _check(self, check_inputs: Tensor) -> tuple[float, float]:
        """The absolute differences of the loss and (largest) of the outputs from the reference's."""
        reference = self.reference
        rows = len(reference.targets)
        torch.manual_seed(CHECK_SEED)
        with self._autocast():
            outputs = self._model(check_inputs)
            loss = float(self._loss_fn(outputs[:rows], reference.targets).detach())
        outputs = outputs[:rows].detach().float()
        if reference.outputs is None:
            reference.outputs, reference.loss = outputs, loss
        if outputs.shape != reference.outputs.shape:
            raise ValueError(
                f"the outputs are {tuple(outputs.shape)}, the baseline's {tuple(reference.outputs.shape)}"
            )
        output_diff = (outputs - reference.outputs).abs().max().item() if outputs.numel() else 0.0
        return abs(loss - reference.loss), output_diff

    def _step(self) -> Tensor:
        self._optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss: Tensor = self._loss_fn(self._model(self._inputs), self._targets)
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
            self._scaler.step(self._optimizer)
            self._scaler.update()
        else:
            loss.backward()
            self._optimizer.step()
        return loss


def measure(
    target: TuningTarget,
    target_params: dict[str, Any],
    config: StepConfig,
    baseline: TrainingStep,
    *,
    steps: int,
    warmup: int,
    cancelled: Callable[[], bool] = lambda: False,
) -> Measurement:
    """Measure a variant against the baseline's prepared step, alternating rounds of each."""
    device = baseline.device
    memory = PeakMemory(device)
    step: TrainingStep | None = None
    try:
        with memory:  # over building, checking, warming up and a first round: before the baseline runs again
            step = TrainingStep(target, target_params, config, device, baseline.reference)
            step.run(warmup, cancelled)
            rounds = [step.run(min(ROUND_STEPS, steps), cancelled)]
        ratios = []
        while True:
            base_round = baseline.run(ROUND_STEPS, cancelled)
            ratios.append(statistics.median(base_round) / statistics.median(rounds[-1]))
            done = sum(map(len, rounds))
            if done >= steps:
                break
            rounds.append(step.run(min(ROUND_STEPS, steps - done), cancelled))
        median = statistics.median(time for times in rounds for time in times)
        return Measurement(
            throughput=config.batch_size / median,
            step_ms_p50=median * 1000,
            peak_memory_mb=memory.peak_mb,
            max_abs_diff=step.max_abs_diff,
            output_max_abs_diff=step.output_max_abs_diff,
            compile_s=step.compile_s,
            speedup=statistics.median(ratios) * config.batch_size / baseline.config.batch_size,
        )
    finally:
        if step is not None:
            step.close()
        elif config.compile:
            torch._dynamo.reset()


def measure_baseline(
    target: TuningTarget,
    target_params: dict[str, Any],
    config: StepConfig,
    device: torch.device,
    *,
    steps: int,
    warmup: int,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[TrainingStep, float]:
    """Build, warm up and time the baseline; its prepared step and its peak memory in MiB."""
    with PeakMemory(device) as memory:
        step = TrainingStep(target, target_params, config, device)
        step.run(warmup, cancelled)
        step.times.clear()
        step.run(steps, cancelled)
    return step, memory.peak_mb


def _tiled(batch: Tensor, size: int) -> Tensor:
    """The batch repeated along its first dimension to ``size`` rows; its own first rows come first."""
    repeats = -(-size // batch.shape[0])
    return batch.repeat(repeats, *([1] * (batch.dim() - 1)))[:size]


def _synchronize(device: torch.device) -> None:
    # CUDA kernels run asynchronously: without waiting, a step's time would be its launch time.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
