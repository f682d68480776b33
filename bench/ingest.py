"""Ingest, SDK → stored in PostgreSQL: a run logging 200,000 points in a tight loop, against raw COPY.

Targets (DESIGN §10, issue 12): ≥ 1.0 of raw asyncpg row COPY of the same points measured in the same run
(and ≥ 150,000 points/s, wave 1's). The
product is production wiring: `ptw serve --executors 0` (which `startRun` goes to; it runs a metric
ingester too) and a warm `ptw worker` (supervisor, Redis stream, ingester) on a fresh database and Redis
prefix. Timed from `startRun` until every point is stored, read through the API's own `total` of each key;
the baseline is ``copy_records_to_table`` of as many prepared rows into an indexed table of a row per point
(the layout points had before block storage: ``BASELINE_TABLE``), right after.

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


BASELINE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_point_rows (
    run_id varchar(36), key varchar(200), step bigint, value double precision, ts timestamptz, seq bigint,
    PRIMARY KEY (run_id, key, step)
);
CREATE INDEX IF NOT EXISTS bench_point_rows_run_seq ON bench_point_rows (run_id, seq)
"""
TOTALS = "query($id: ID!, $k: String!) { run(id: $id) { metrics(key: $k, maxPoints: 1) { total } } }"


async def stored_all(
    stack: Stack, http: httpx.AsyncClient, api: Replica, run: str, keys: list[str], steps: int
) -> None:
    """Wait until every point is stored, as a client sees it: each key's ``total`` (a sum of block counts,
    no point loaded), polled every 5 ms."""
    pending = list(keys)
    while pending:
        body = (
            await http.post(
                f"{api.url}/graphql",
                json={"query": TOTALS, "variables": {"id": run, "k": pending[0]}},
                headers=stack.headers,
            )
        ).json()
        if body["data"]["run"]["metrics"]["total"] >= steps:
            pending.pop(0)
            continue
        await asyncio.sleep(0.005)


async def raw_copy(db: asyncpg.Connection, run_id: str, keys: int, steps: int) -> float:
    """Seconds to COPY ``keys x steps`` prepared rows into an indexed table of a row per point."""
    await db.execute(BASELINE_TABLE)
    now = datetime.now(UTC)
    records = [(run_id, f"copy_{k}", step, float(step), now, 1) for step in range(steps) for k in range(keys)]
    started = time.perf_counter()
    await db.copy_records_to_table("bench_point_rows", records=records, columns=COLUMNS)
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
    await asyncio.wait_for(stored_all(stack, http, api, run, keys, args.steps), args.timeout)
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
            ("ratio product / raw COPY", f"{ratio:.2f} (target ≥ 1.0)"),
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
            "target_ratio": 1.0,
            "met": rate >= 150_000 and ratio >= 1.0,
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
