"""The GPU path in one short script, for a machine with a CUDA GPU: runs, NCCL, tuning, fp16/bf16/TF32.

Through the real executor path (embedded services on SQLite, a local pool of one slot whose child picks
``cuda:0``): a 2-epoch digits-cnn run; a 2-epoch digits-ddp run on one GPU through torch's elastic
launcher (a process group of one rank on NCCL); then ``ptw-tuner`` on digits-cnn (compile, fp16 with a
GradScaler, bf16, TF32, channels_last, a larger batch) and on tiny-lm (fp16, bf16, TF32). Prints a table
and a JSON line.
Exit status: 0 when every check passed, 1 when one failed (the failures are listed), 2 without CUDA.
It takes a few minutes, most of them compiling (``--no-compile`` leaves torch.compile out).

    python -m bench.gpu_check [--no-compile] [--max-autotune]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import report
from bench.tuning import describe
from ptw.domain.runs import Run, RunStatus
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Actor, Role
from ptw.executors.pool import LocalExecutorPool
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.settings import Settings

REPO = Path(__file__).resolve().parents[1]
LOW_PRECISION = ("amp-fp16", "amp-bf16", "tf32")


async def run_to_end(
    services: Services, actor: Actor, workflow: str, params: dict[str, Any], within: float
) -> Run:
    spec = await services.workflows.get_by_name(actor, workflow)
    run = await services.runs.start_run(actor, spec.id, params=params)
    deadline = time.monotonic() + within
    while not run.status.terminal:
        if time.monotonic() > deadline:
            await services.runs.cancel_run(actor, run.id)
            raise TimeoutError(f"{workflow} run {run.id} is still {run.status.value} after {within:.0f} s")
        await asyncio.sleep(0.2)
        run = await services.runs.get_run(actor, run.id)
    return run


def tuning_checks(name: str, run: Run, expected: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Table lines of a tuning run, and what is wrong with it."""
    failures = []
    if run.status is not RunStatus.SUCCEEDED or run.summary is None:
        return [(name, f"{run.status.value}: {run.error}")], [f"{name} {run.status.value}: {run.error}"]
    summary = run.summary
    if not summary["device"].startswith("cuda"):
        failures.append(f"{name} ran on {summary['device']}, not CUDA")
    rows = {row["name"]: row for row in summary["variants"]}
    skipped = {s["name"]: s["reason"] for s in summary["skipped"]}
    lines = [(f"{name} device", summary["device"])]
    for variant in expected:
        # "batch-size" expands to one variant per size ("batch-size-256"); the others keep their kind's name.
        row = next((r for n, r in rows.items() if n == variant or n.startswith(f"{variant}-")), None)
        if variant in skipped:
            lines.append((f"{name} {variant}", f"skipped: {skipped[variant]}"))
            if variant != "tf32":  # TF32 is skipped, rightly, on GPUs older than Ampere
                failures.append(f"{name} {variant} skipped: {skipped[variant]}")
        elif row is None:
            failures.append(f"{name} {variant} was not measured")
        elif row["state"] != "COMPLETE":
            lines.append((f"{name} {variant}", f"FAILED: {row['error']}"))
            failures.append(f"{name} {variant} FAILED: {row['error']}")
    lines += [
        (f"{name} {variant}", describe(row)) for variant, row in rows.items() if row["state"] == "COMPLETE"
    ]
    lines.append((f"{name} best", f"{summary['best']} at {summary['best_speedup']:.2f}x"))
    return lines, failures


async def main(args: argparse.Namespace) -> int:
    if not torch.cuda.is_available():
        print(f"CUDA is not available (torch {torch.__version__}, built for CUDA {torch.version.cuda}): "
              "this check needs a machine with an NVIDIA GPU", file=sys.stderr)  # fmt: skip
        return 2
    compile_variants = [] if args.no_compile else ["compile"]
    if args.max_autotune:
        compile_variants.append("compile-max-autotune")
    cnn_variants = [*compile_variants, *LOW_PRECISION, "channels-last", "batch-size"]
    with tempfile.TemporaryDirectory(prefix="ptw-gpu-check-") as data_dir:
        services = await bootstrap(Settings(data_dir=Path(data_dir), executors=0), migrate=True)
        pool = LocalExecutorPool(
            services.execution, services.metrics, services.bus, services.queue, services.registry,
            Path(data_dir) / "artifacts", slots=1, env={"PYTHONPATH": str(REPO)},
        )  # fmt: skip
        await pool.start()
        try:
            issued = await services.access.bootstrap_key("gpu-check", Role.ADMIN)
            actor = await services.access.authenticate(issued.secret)
            train = await run_to_end(services, actor, "digits-cnn", {"epochs": 2}, within=180)
            nccl_spec = WorkflowSpec(
                "digits-ddp-nccl", "ptw.executors.workflows.digits_ddp:train", gpus=1, processes_per_node=1
            )
            await services.workflows.register(actor, None, nccl_spec)
            ddp = await run_to_end(services, actor, "digits-ddp-nccl", {"epochs": 2}, within=240)
            cnn = await run_to_end(
                services, actor, "ptw-tuner",
                {"target": "digits-cnn", "variants": cnn_variants, "batch_sizes": [256], "steps": 30},
                within=420,
            )  # fmt: skip
            lm = await run_to_end(
                services, actor, "ptw-tuner",
                {"target": "tiny-lm", "target_params": {"batch_size": 32, "seq_len": 128}, "steps": 30,
                 "variants": list(LOW_PRECISION)},
                within=240,
            )  # fmt: skip
        finally:
            await pool.stop(grace=3)
            await services.aclose()

    failures = []
    accuracy = (train.summary or {}).get("val_accuracy", 0.0)
    lines = [
        ("gpu", torch.cuda.get_device_name(0)),
        ("digits-cnn run", f"{train.status.value} on {train.device}"),
    ]
    if train.status is not RunStatus.SUCCEEDED:
        failures.append(f"digits-cnn run {train.status.value}: {train.error}")
    elif not (train.device or "").startswith("cuda"):
        failures.append(f"the digits-cnn run ran on {train.device}, not CUDA")
    elif accuracy < 0.8:
        failures.append(f"the digits-cnn run reached val_accuracy {accuracy:.3f} < 0.8")
    lines.append(("digits-cnn accuracy", f"{accuracy:.4f} after 2 epochs"))
    ddp_summary = ddp.summary or {}
    lines.append(
        ("digits-ddp (NCCL)", f"{ddp.status.value} on {ddp.device}, backend {ddp_summary.get('backend')}")
    )
    if ddp.status is not RunStatus.SUCCEEDED:
        failures.append(f"digits-ddp NCCL run {ddp.status.value}: {ddp.error}")
    elif ddp_summary.get("backend") != "nccl" or not (ddp.device or "").startswith("cuda"):
        failures.append(f"digits-ddp ran on {ddp.device} with {ddp_summary.get('backend')}, not NCCL on CUDA")
    for name, run, expected in (("cnn", cnn, cnn_variants), ("lm", lm, list(LOW_PRECISION))):
        more_lines, more_failures = tuning_checks(name, run, expected)
        lines += more_lines
        failures += more_failures
    lines.append(("result", "ok" if not failures else f"{len(failures)} check(s) failed"))
    for failure in failures:
        lines.append(("failed", failure))

    def speedups(run: Run) -> dict[str, float | None]:
        rows = (run.summary or {}).get("variants", [])
        return {r["name"]: r["metrics"].get("speedup") for r in rows}

    report(
        "gpu_check",
        lines,
        {
            "gpu": torch.cuda.get_device_name(0),
            "ok": not failures,
            "failures": failures,
            "digits_cnn": {"status": train.status.value, "device": train.device, "val_accuracy": accuracy},
            "digits_ddp_nccl": {
                "status": ddp.status.value,
                "device": ddp.device,
                "backend": ddp_summary.get("backend"),
                "val_accuracy": ddp_summary.get("val_accuracy"),
            },
            "tuning_cnn": {"best": (cnn.summary or {}).get("best"), "speedups": speedups(cnn)},
            "tuning_lm": {"best": (lm.summary or {}).get("best"), "speedups": speedups(lm)},
        },
    )
    return 0 if not failures else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-compile", action="store_true", help="leave torch.compile out (it takes a while)"
    )
    parser.add_argument("--max-autotune", action="store_true", help="also try compile mode max-autotune")
    sys.exit(asyncio.run(main(parser.parse_args())))
