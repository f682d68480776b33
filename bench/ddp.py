"""Distributed ``digits-ddp`` on CPU: 1 process vs 2 (gloo, one executor), the same global batch.

Each configuration is a real run through the product (embedded services, one executor slot whose runner
hands the run to torch's elastic launcher); reported: the training time the workflow measures
(``train_seconds``, rendezvous and process start excluded), the run's wall time from RUNNING to its end,
training throughput (samples/s over the epochs), the scaling (1-process time / 2-process time) and the
result difference against the stated tolerance (``digits_ddp.TOLERANCE``). On a 2-core machine expect
little or no speed-up: the model is small and every step all-reduces its gradients.

    python -m bench.ddp [--epochs 20] [--batch-size 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.common import report
from ptw.domain.runs import Run, RunStatus
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Actor, Role
from ptw.executors.pool import LocalExecutorPool
from ptw.executors.workflows.digits_ddp import TOLERANCE
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.settings import Settings


async def finished(services: Services, actor: Actor, run_id: str) -> Run:
    while True:
        run = await services.runs.get_run(actor, run_id)
        if run.status.terminal:
            return run
        await asyncio.sleep(0.1)


ENTRYPOINT = "ptw.executors.workflows.digits_ddp:train"
TRAIN_SAMPLES = 1437  # scikit-learn's 1797 digits less the 20 % validation split


async def measure(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ptw-bench-ddp-") as tmp:
        services = await bootstrap(Settings(data_dir=Path(tmp), executors=0), migrate=True)
        issued = await services.access.bootstrap_key("bench-ddp", Role.ADMIN)
        actor = await services.access.authenticate(issued.secret)
        pool = LocalExecutorPool(
            services.execution,
            services.metrics,
            services.bus,
            services.queue,
            services.registry,
            Path(tmp) / "artifacts",
            slots=1,
        )
        await pool.start()
        results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        try:
            for processes in (1, 2):
                spec = WorkflowSpec(f"bench-ddp-{processes}", ENTRYPOINT, processes_per_node=processes)
                workflow = await services.workflows.register(actor, None, spec)
                for _ in range(args.repeats):
                    params = {"epochs": args.epochs, "batch_size": args.batch_size}
                    started = await services.runs.start_run(actor, workflow.id, params=params)
                    run = await finished(services, actor, started.id)
                    if run.status is not RunStatus.SUCCEEDED or run.summary is None:
                        raise RuntimeError(f"{processes}-process run ended {run.status.value}: {run.error}")
                    assert run.started_at is not None and run.finished_at is not None
                    wall = (run.finished_at - run.started_at).total_seconds()
                    results[processes].append({**run.summary, "wall_s": wall})
        finally:
            await pool.stop(grace=3)
            await services.aclose()
    one, two = results[1], results[2]
    train_1 = statistics.median(r["train_seconds"] for r in one)
    train_2 = statistics.median(r["train_seconds"] for r in two)
    wall_1 = statistics.median(r["wall_s"] for r in one)
    wall_2 = statistics.median(r["wall_s"] for r in two)
    samples = TRAIN_SAMPLES * args.epochs
    deltas = {key: abs(two[0][key] - one[0][key]) for key in TOLERANCE}
    within = all(deltas[key] <= TOLERANCE[key] for key in TOLERANCE)
    report(
        "ddp",
        [
            ("1 process", f"train {train_1:.2f} s ({samples / train_1:,.0f} samples/s), run {wall_1:.2f} s"),
            (
                "2 processes (gloo)",
                f"train {train_2:.2f} s ({samples / train_2:,.0f} samples/s), run {wall_2:.2f} s",
            ),
            ("scaling (1p / 2p train time)", f"{train_1 / train_2:.2f}x"),
            (
                "result, 2p vs 1p",
                ", ".join(f"Δ{key} {deltas[key]:.4f} (≤ {TOLERANCE[key]})" for key in TOLERANCE)
                + (" within tolerance" if within else " OUTSIDE tolerance"),
            ),
        ],
        {
            "epochs": args.epochs,
            "global_batch": args.batch_size,
            "train_seconds": {"1": train_1, "2": train_2},
            "run_seconds": {"1": wall_1, "2": wall_2},
            "scaling": train_1 / train_2,
            "val_accuracy": {"1": one[0]["val_accuracy"], "2": two[0]["val_accuracy"]},
            "deltas": deltas,
            "tolerance": TOLERANCE,
            "within_tolerance": within,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
