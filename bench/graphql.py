"""Dashboard query: a page of runs with their workflow and latest metrics — SQL round trips and latency.

Targets (DESIGN §10): round trips independent of page size (≤ 4), p50 ≤ 30 ms for 50 runs. The app is
the real ASGI app over a fresh PostgreSQL database, measured without and then with the Redis read cache
(``--cache``), driven in-process through httpx's ASGI transport, so the figure is the server's time
without network.

    python -m bench.graphql [--runs 50] [--keys 10] [--steps 100] [--iterations 100] [--cache both]
"""

from __future__ import annotations

import sys
from pathlib import Path

if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as `python bench/graphql.py`: this file's name must not shadow the graphql library.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime

import httpx

from bench.common import REDIS, fresh_postgres, report, summary_ms
from ptw.api.app import create_app
from ptw.domain.metrics import MetricPoint, series_of_points
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Role
from ptw.infra.bootstrap import bootstrap
from ptw.infra.settings import Settings
from ptw.lifecycle import freeze_start_up_heap

PAGE = """query($first: Int!) {
  runs(first: $first) { edges { node { id status params createdAt
    workflow { name } latestMetrics { key step value } } } pageInfo { hasNextPage endCursor } }
}"""
# The same page filtered by tag, param and a metric threshold, ordered by a metric: still one statement
# for the runs, so the same round trips.
FILTERED = """query($first: Int!) {
  runs(first: $first, orderBy: METRIC_DESC, orderMetric: "k0",
       filter: {tags: ["bench"], params: {lr: 0.1}, metrics: [{key: "k0", op: GTE, value: 0}]}) {
    edges { node { id status params createdAt workflow { name } latestMetrics { key step value } } }
    pageInfo { hasNextPage endCursor } }
}"""


async def seed(services, runs: int, keys: int, steps: int) -> str:  # type: ignore[no-untyped-def]
    issued = await services.access.bootstrap_key("bench", Role.ADMIN)
    actor = await services.access.authenticate(issued.secret)
    workflow = await services.workflows.register(actor, None, WorkflowSpec("bench", "bench.fake:train"))
    now = datetime.now(UTC)
    for _ in range(runs):
        run = await services.runs.start_run(actor, workflow.id, params={"lr": 0.1}, tags=["bench"])
        points = [MetricPoint(f"k{k}", s, float(s), now) for s in range(steps) for k in range(keys)]
        batch = await services.metrics.record(run.id, series_of_points(points))
        if services.redis is not None and batch is not None:
            await services.metrics.ingest([batch])  # what the ingester does: the page reads stored points
    return issued.secret


async def one_mode(args: argparse.Namespace, with_redis: bool) -> dict[str, object]:
    """Statements per page size and latency of the page, with or without the Redis read cache."""
    async with fresh_postgres() as url:
        settings = Settings(
            database_url=url,
            redis_url=REDIS if with_redis else None,
            executors=0,
            redis_prefix=f"bench{int(time.time())}",
        )
        services = await bootstrap(settings, migrate=True)
        try:
            key = await seed(services, args.runs, args.keys, args.steps)
            app = create_app(services)
            freeze_start_up_heap()  # as `ptw serve` does before it serves
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            ) as http:

                async def page(query: str, first: int) -> dict[str, object]:
                    body = {"query": query, "variables": {"first": first}}
                    answer: dict[str, object] = (
                        await http.post("/graphql", json=body, headers=headers)
                    ).json()
                    assert "errors" not in answer, answer
                    return answer

                statements: dict[str, int] = {}
                for name, query in (("", PAGE), ("filtered ", FILTERED)):
                    for first in (10, 25, args.runs):
                        await page(query, first)
                        before = services.database.statements
                        answer = await page(query, first)
                        edges = answer["data"]["runs"]["edges"]  # type: ignore[index]
                        assert len(edges) == min(first, args.runs), answer
                        statements[f"{name}{first}"] = services.database.statements - before
                samples = []
                for _ in range(args.iterations):
                    started = time.perf_counter()
                    await page(PAGE, args.runs)
                    samples.append(time.perf_counter() - started)
        finally:
            await services.aclose()
    return {"redis": with_redis, "statements_by_page_size": statements, **summary_ms(samples)}


async def measure(args: argparse.Namespace) -> None:
    modes = {"both": (False, True), "redis": (True,), "none": (False,)}[args.cache]
    results = [await one_mode(args, with_redis) for with_redis in modes]
    rows = []
    for r in results:
        label = "with Redis cache" if r["redis"] else "without cache"
        rows.append(
            (
                f"{label}: page size → SQL statements",
                ", ".join(f"{k}: {v}" for k, v in r["statements_by_page_size"].items()),
            )
        )  # type: ignore[attr-defined]
        rows.append(
            (
                f"{label}: {args.runs} runs (p50/p90/p99)",
                f"{r['p50_ms']} / {r['p90_ms']} / {r['p99_ms']} ms (target p50 ≤ 30 ms, ≤ 4 statements)",
            )
        )
    report("graphql", rows, {"modes": results, "target_p50_ms": 30, "target_statements": 4})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument(
        "--cache", choices=("both", "redis", "none"), default=os.environ.get("PTW_BENCH_CACHE", "both")
    )
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
