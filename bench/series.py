"""Stored series: bytes per point on PostgreSQL, and a 1,000,000-point series read downsampled and whole
from a production replica while its /healthz is polled.

Targets (issue 12): ≤ 24 bytes per point (table + indexes + TOAST: ``pg_total_relation_size`` of the metric
tables over 10 keys x 20,000 steps, stored as the ingester stores them, in batches of ``--batch-steps``
steps of every key); ``metrics(key, maxPoints: 1000)`` p50 ≤ 50 ms; the whole series (``maxPoints: null``,
read as ``columns``) ≤ 1.5 s; the replica's memory growth ≤ 100 MB; /healthz answering throughout.

    python -m bench.series [--points 1000000] [--batch-steps 500] [--iterations 50] [--whole 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import asyncpg
import httpx
import numpy as np

from bench.common import report, summary_ms
from bench.stack import Replica, Stack, production_stack
from ptw.api.ids import encode_id
from ptw.domain.metrics import MetricBatch, Series
from ptw.domain.services.workflows import WorkflowSpec

READ = """query($id: ID!, $max: Int) {
  run(id: $id) { metrics(key: "loss", maxPoints: $max) { total columns } }
}"""
TABLES = ("metric_blocks", "metric_series")


async def new_run(stack: Stack, name: str) -> str:
    actor = await stack.services.access.authenticate(stack.key)
    workflow = await stack.services.workflows.register(actor, None, WorkflowSpec(name, "bench.fake:train"))
    run = await stack.services.runs.start_run(actor, workflow.id, params={})
    return run.id  # queued forever (no worker): only its metrics matter here


async def store(stack: Stack, run_id: str, keys: list[str], steps: int, batch_steps: int) -> None:
    """As the ingester stores a run logging forward: batches of ``batch_steps`` steps of every key."""
    start_at = time.time()
    for seq, first in enumerate(range(0, steps, batch_steps), start=1):
        at = np.arange(first, min(first + batch_steps, steps), dtype=np.int64)
        series = tuple(
            Series(k, at, np.sin(at / 100.0) + i, start_at + at * 0.01) for i, k in enumerate(keys)
        )
        await stack.services.metrics.ingest([MetricBatch(run_id, seq, series)])


async def stored_bytes(db: asyncpg.Connection) -> int:
    sizes = " + ".join(f"pg_total_relation_size('{table}')" for table in TABLES)
    return int(await db.fetchval(f"SELECT {sizes}"))


class Watch:
    """The replica's resident memory and its /healthz latency, sampled every 50 ms while reads run."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.baseline = self.peak = self.rss()
        self.health: list[float] = []
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def rss(self) -> int:
        """Resident bytes of the replica process (psutil is not a dependency: /proc has it)."""
        for line in Path(f"/proc/{self.replica.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS for the replica")

    async def _sample(self) -> None:
        async with httpx.AsyncClient() as http:
            while True:
                self.peak = max(self.peak, self.rss())
                started = time.perf_counter()
                try:
                    ok = (await http.get(f"{self.replica.url}/healthz", timeout=5)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.health.append(time.perf_counter() - started)
                self.failures += not ok
                await asyncio.sleep(0.05)

    def __enter__(self) -> Watch:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def timed_read(
    http: httpx.AsyncClient, stack: Stack, api: Replica, run: str, max_points: int | None
) -> tuple[float, int]:
    started = time.perf_counter()
    response = await http.post(
        f"{api.url}/graphql",
        json={"query": READ, "variables": {"id": run, "max": max_points}},
        headers=stack.headers,
    )
    elapsed = time.perf_counter() - started
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"series read failed: {body['errors']}")
    series = body["data"]["run"]["metrics"]
    return elapsed, len(series["columns"]["loss"]["steps"])


async def measure(args: argparse.Namespace) -> None:
    async with production_stack() as stack:
        api = await stack.replica()
        db = await asyncpg.connect(stack.asyncpg_url)
        try:
            small = await new_run(stack, "bench-bytes")
            await store(stack, small, [f"k{i}" for i in range(10)], 20_000, args.batch_steps)
            per_point = await stored_bytes(db) / 200_000
            big = await new_run(stack, "bench-series")
            await store(stack, big, ["loss"], args.points, 10_000)
            run = encode_id("Run", big)
            async with httpx.AsyncClient(timeout=120) as http:
                await timed_read(http, stack, api, run, 1000)  # warm: connections, the schema's caches
                with Watch(api) as watch:
                    down = [await timed_read(http, stack, api, run, 1000) for _ in range(args.iterations)]
                    whole = [await timed_read(http, stack, api, run, None) for _ in range(args.whole)]
        except Exception:
            print(stack.logs())
            raise
        finally:
            await db.close()
    down_ms = summary_ms([s for s, _ in down])
    whole_s = statistics.median(s for s, _ in whole)
    growth_mb = (watch.peak - watch.baseline) / 2**20
    health = summary_ms(watch.health)
    report(
        "series",
        [
            (
                "bytes per point (10 x 20,000)",
                f"{per_point:.1f} (batches of {args.batch_steps} steps; target ≤ 24)",
            ),
            (
                f"maxPoints 1000 of {args.points:,} (p50/p90/p99)",
                f"{down_ms['p50_ms']} / {down_ms['p90_ms']} / {down_ms['p99_ms']} ms, {down[0][1]} points "
                "(target p50 ≤ 50 ms)",
            ),
            ("whole series as columns (median)", f"{whole_s:.3f} s, {whole[0][1]:,} points (target ≤ 1.5 s)"),
            ("replica memory growth", f"{growth_mb:.0f} MB (target ≤ 100 MB)"),
            (
                "/healthz meanwhile (p50/p99, failures)",
                f"{health['p50_ms']} / {health['p99_ms']} ms, {watch.failures}",
            ),
        ],
        {
            "bytes_per_point": round(per_point, 2),
            "downsampled": down_ms,
            "whole_s": round(whole_s, 3),
            "memory_growth_mb": round(growth_mb, 1),
            "healthz": health,
            "healthz_failures": watch.failures,
            "met": per_point <= 24 and down_ms["p50_ms"] <= 50 and whole_s <= 1.5 and growth_mb <= 100,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--batch-steps", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--whole", type=int, default=3)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
