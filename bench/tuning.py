"""digits-cnn training speedups on this machine's CPU: every ptw-tuner variant against eager fp32.

Target (issue 6): a best speedup of at least 1.2x within tolerance. The tuner runs in this process through
a stand-in RunContext (in an executor child it runs the same code). Then digits-cnn is trained for
``--epochs`` epochs twice, as the baseline and as the best variant, and the validation accuracies are
compared: the accuracy delta of adopting the best variant (a batch size changes the optimization too).

    python -m bench.tuning [--steps 30] [--threads N] [--variants compile channels-last ...] [--epochs 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from typing import Any

import torch
import torch.nn.functional as F

from bench.common import report
from ptw.executors.tuning.tuner import tune
from ptw.executors.tuning.variants import StepConfig
from ptw.executors.workflows import defaults_of
from ptw.executors.workflows.digits_cnn import IMAGE_SIZE, DigitsCNN
from ptw.executors.workflows.digits_data import image_digits
from ptw.executors.workflows.digits_training import evaluate, make_optimizer

TARGET_SPEEDUP = 1.2


class BenchContext:
    """The RunContext surface the tuner uses: params, device, log (ignored: it prints), cancelled."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.device = torch.device("cpu")
        self.cancelled = False

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass


def trained_accuracy(config: StepConfig, epochs: int) -> float:
    """digits-cnn trained with a variant's settings (full batches only: one shape for torch.compile)."""
    params = defaults_of("digits-cnn")
    torch.manual_seed(params["seed"])
    model = DigitsCNN(params["channels"])
    data = image_digits(params["seed"], IMAGE_SIZE)
    images = data.x_train
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, params)
    step_model = torch.compile(model, mode=config.compile) if config.compile else model
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16) if config.amp == "bf16" else contextlib.nullcontext()
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads or threads)
    try:
        model.train()
        for epoch in range(1, epochs + 1):
            generator = torch.Generator().manual_seed(params["seed"] * 100_003 + epoch)
            order = torch.randperm(len(data.y_train), generator=generator)
            for start in range(0, len(order) - config.batch_size + 1, config.batch_size):
                index = order[start : start + config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                with autocast:
                    loss = F.cross_entropy(step_model(images[index]), data.y_train[index])
                loss.backward()
                optimizer.step()
        return evaluate(model, data)[1]  # in eager fp32: the accuracy of the weights the variant trained
    finally:
        torch.set_num_threads(threads)
        torch._dynamo.reset()


def describe(row: dict[str, Any]) -> str:
    """One variant of a tuning summary as a table cell."""
    if row["state"] != "COMPLETE":
        return f"FAILED: {row['error']}"
    m = row["metrics"]
    beyond = "" if m["max_abs_diff"] <= m["tolerance"] else " BEYOND TOLERANCE"
    compiled = f", compile {m['compile_s']:.1f} s" if "compile_s" in m else ""
    return (
        f"{m['speedup']:5.2f}x  {m['throughput']:8.0f} samples/s  p50 {m['step_ms_p50']:6.2f} ms  "
        f"max_abs_diff {m['max_abs_diff']:.1e}{beyond}  peak {m['peak_memory_mb']:.0f} MiB{compiled}"
    )


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    params = {
        **defaults_of("ptw-tuner"),
        "target": "digits-cnn",
        "steps": args.steps,
        "warmup": args.warmup,
        "variants": args.variants,
    }
    started = time.perf_counter()
    summary = tune(BenchContext(params))
    tuning_s = time.perf_counter() - started
    rows = {row["name"]: row for row in summary["variants"]}
    best = rows[summary["best"]]
    baseline_accuracy = trained_accuracy(StepConfig(**rows["eager-fp32"]["config"]), args.epochs)
    best_accuracy = trained_accuracy(StepConfig(**best["config"]), args.epochs)

    lines = [(name, describe(row)) for name, row in rows.items()]
    delta = best_accuracy - baseline_accuracy
    lines += [
        ("best", f"{summary['best']} at {summary['best_speedup']:.2f}x (target ≥ {TARGET_SPEEDUP}x)"),
        ("accuracy", f"baseline {baseline_accuracy:.4f}, best {best_accuracy:.4f}, delta {delta:+.4f}"),
        ("machine", f"{os.cpu_count()} CPUs, baseline on {args.threads} thread(s); tuning {tuning_s:.0f} s"),
    ]
    report(
        "tuning",
        lines,
        {
            "device": summary["device"],
            "threads": args.threads,
            "best": summary["best"],
            "best_speedup": round(summary["best_speedup"], 3),
            "target": TARGET_SPEEDUP,
            "met": summary["best_speedup"] >= TARGET_SPEEDUP,
            "speedups": {
                name: round(row["metrics"]["speedup"], 3) if row["state"] == "COMPLETE" else None
                for name, row in rows.items()
            },
            "max_abs_diff": {
                name: row["metrics"]["max_abs_diff"]
                for name, row in rows.items()
                if row["state"] == "COMPLETE"
            },
            "accuracy": {"baseline": baseline_accuracy, "best": best_accuracy, "delta": delta},
            "tuning_s": round(tuning_s, 1),
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="the baseline's CPU threads")
    parser.add_argument("--variants", nargs="*", default=None, help="variant kinds (default: all that apply)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the accuracy comparison")
    main(parser.parse_args())
