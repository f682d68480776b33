"""Embedded ingest: points per second stored in SQLite by `MetricService.record`, the path a run's
supervisor takes in embedded mode (no Redis: each batch is stored at once, then published).

Target (issue 12): ≥ 200,000 points/s for 10 keys x 20,000 steps, in batches of ``--batch-steps`` steps of
every key (what a supervisor coalesces while the store is busy).

    python -m bench.embedded_ingest [--keys 10] [--steps 20000] [--batch-steps 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import report
from ptw.domain.metrics import Series
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Role
from ptw.infra.bootstrap import bootstrap
from ptw.infra.settings import Settings


async def one_run(services, actor, workflow_id: str, args: argparse.Namespace) -> float:  # type: ignore[no-untyped-def]
    """Seconds to record every batch of one run."""
    run = await services.runs.start_run(actor, workflow_id, params={})
    keys = [f"k{i}" for i in range(args.keys)]
    batches = []
    for first in range(0, args.steps, args.batch_steps):
        steps = np.arange(first, min(first + args.batch_steps, args.steps), dtype=np.int64)
        stamps = time.time() + steps * 0.001
        batches.append(tuple(Series(k, steps, np.sin(steps / 50.0) + i, stamps) for i, k in enumerate(keys)))
    started = time.perf_counter()
    for series in batches:
        await services.metrics.record(run.id, series)
    elapsed = time.perf_counter() - started
    stored = await services.metrics.series_of(run.id, keys[-1], max_points=1)
    if stored.total != args.steps:
        raise RuntimeError(f"{stored.total} points of {keys[-1]} stored, not {args.steps}")
    return elapsed


async def measure(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ptw-bench-") as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'ptw.db'}",
            redis_url=None,
            executors=0,
            data_dir=Path(tmp),
        )
        services = await bootstrap(settings, migrate=True)
        try:
            issued = await services.access.bootstrap_key("bench", Role.ADMIN)
            actor = await services.access.authenticate(issued.secret)
            workflow = await services.workflows.register(
                actor, None, WorkflowSpec("bench", "bench.fake:train")
            )
            times = [await one_run(services, actor, workflow.id, args) for _ in range(args.repeats)]
        finally:
            await services.aclose()
    points = args.keys * args.steps
    median = statistics.median(times)
    rate = points / median
    report(
        "embedded_ingest",
        [
            (
                "points per run",
                f"{points:,} ({args.keys} keys x {args.steps:,} steps), batches of {args.batch_steps} steps",
            ),
            ("record → stored (median)", f"{median:.3f} s (runs: {', '.join(f'{t:.3f}' for t in times)})"),
            ("rate", f"{rate:,.0f} points/s (target ≥ 200,000)"),
        ],
        {"points": points, "seconds": round(median, 4), "points_per_s": round(rate), "met": rate >= 200_000},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--batch-steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
