"""Ingest, SDK → stored in PostgreSQL: a run logging 200,000 points in a tight loop, against raw COPY.

Targets (DESIGN §10): ≥ 150,000 points/s, and ≥ 0.4 of raw asyncpg COPY measured in the same run. The
product is production wiring: `ptw serve --executors 0` (which `startRun` goes to; it runs a metric
ingester too) and a warm `ptw worker` (supervisor, Redis stream, ingester) on a fresh database and Redis
prefix. Timed from `startRun` until every point is in ``metric_points``; the baseline is
``copy_records_to_table`` of as many prepared rows into the same indexed table, right after.

    python -m bench.ingest [--keys 10] [--steps 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

import asyncpg
import httpx

from bench.common import report
from bench.stack import Replica, Stack, production_stack
from ptw.api.ids import decode_id

COLUMNS = ("run_id", "key", "step", "value", "ts", "seq")


async def stored_all(db: asyncpg.Connection, run_id: str, keys: list[str], steps: int) -> None:
    """Wait until every point is stored. Cheap probes of the last step of each key first (a COUNT over
    the run every few ms would compete with the ingest for the 2 cores), then one COUNT to be sure."""
    total = steps * len(keys)
    while True:
        last = await db.fetchval(
            "SELECT count(*) FROM metric_points WHERE run_id = $1 AND key = ANY($2) AND step = $3",
            run_id,
            keys,
            steps - 1,
        )
        if last == len(keys) and await count(db, run_id) >= total:
            return
        await asyncio.sleep(0.005)


async def count(db: asyncpg.Connection, run_id: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM metric_points WHERE run_id = $1", run_id))


async def raw_copy(db: asyncpg.Connection, run_id: str, keys: int, steps: int) -> float:
    """Seconds to COPY ``keys x steps`` prepared rows (other keys of the same run) into metric_points."""
    now = datetime.now(UTC)
    records = [
        (run_id, f"copy_{k}", step, float(step), now, 1 << 40) for step in range(steps) for k in range(keys)
    ]
    started = time.perf_counter()
    await db.copy_records_to_table("metric_points", records=records, columns=COLUMNS)
    return time.perf_counter() - started


async def one_run(
    stack: Stack,
    http: httpx.AsyncClient,
    api: Replica,
    db: asyncpg.Connection,
    workflow: str,
    args: argparse.Namespace,
) -> tuple[float, float, float]:
    """(product seconds, raw COPY seconds, seconds the training loop spent logging)."""
    keys = [f"k{i}" for i in range(args.keys)]
    started = time.perf_counter()
    run = await stack.start_run(http, api, workflow, {"keys": args.keys, "steps": args.steps})
    run_id = decode_id(run, "Run")
    await asyncio.wait_for(stored_all(db, run_id, keys, args.steps), args.timeout)
    product = time.perf_counter() - started
    finished = await stack.wait_finished(http, api, run)
    if finished["status"] != "SUCCEEDED":
        raise RuntimeError(f"the ingest run ended {finished['status']}: {finished['error']}")
    summary = (
        await http.post(
            f"{api.url}/graphql",
            json={"query": "query($id: ID!) { run(id: $id) { summary } }", "variables": {"id": run}},
            headers=stack.headers,
        )
    ).json()["data"]["run"]["summary"]
    copy = await raw_copy(db, run_id, args.keys, args.steps)
    return product, copy, float(summary.get("logging_s", float("nan")))


async def measure(args: argparse.Namespace) -> None:
    points = args.keys * args.steps
    async with production_stack() as stack:
        api = await stack.replica()
        worker = stack.worker()
        await worker.ready()
        workflow = await stack.register("bench-ingest", "bench.workflows:tight_loop")
        db = await asyncpg.connect(stack.asyncpg_url)
        product, copy, logging = [], [], []
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                for _ in range(args.repeats):
                    p, c, lg = await one_run(stack, http, api, db, workflow, args)
                    product.append(p)
                    copy.append(c)
                    logging.append(lg)
                    await asyncio.sleep(3)  # the worker warms its next runner (torch import) meanwhile
        except Exception:
            print(stack.logs())
            raise
        finally:
            await db.close()
    p, c = statistics.median(product), statistics.median(copy)
    rate, raw = points / p, points / c
    ratio = rate / raw
    report(
        "ingest",
        [
            ("points per run", f"{points:,} ({args.keys} keys x {args.steps:,} steps), {args.repeats} runs"),
            ("startRun → all stored (median)", f"{p:.3f} s (runs: {', '.join(f'{x:.3f}' for x in product)})"),
            ("training loop logging (median)", f"{statistics.median(logging):.3f} s"),
            ("product rate", f"{rate:,.0f} points/s (target ≥ 150,000)"),
            ("raw asyncpg COPY (median)", f"{c:.3f} s = {raw:,.0f} points/s"),
            ("ratio product / raw COPY", f"{ratio:.2f} (target ≥ 0.4)"),
        ],
        {
            "points": points,
            "repeats": args.repeats,
            "product_s": round(p, 4),
            "product_points_per_s": round(rate),
            "copy_s": round(c, 4),
            "copy_points_per_s": round(raw),
            "ratio": round(ratio, 3),
            "logging_s": round(statistics.median(logging), 4),
            "target_points_per_s": 150_000,
            "target_ratio": 0.4,
            "met": rate >= 150_000 and ratio >= 0.4,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
