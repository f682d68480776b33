"""Live latency, logged → received by subscribers on another API replica, over real WebSockets.

Targets (DESIGN §10): p50 ≤ 20 ms, p99 ≤ 100 ms, with 50 subscribers. Production wiring: the run is
started through replica A (`ptw serve --executors 0`), executed by a warm `ptw worker`, and followed by
50 graphql-transport-ws ``runMetrics`` subscriptions on replica B (another `ptw serve --executors 0`).
The training function logs ``sent = time.time()`` every 10 ms; each subscriber subtracts it from its
clock when the point arrives (one machine, one clock). Baseline: the same subscribers and run, with the
points read straight from the run's Redis stream by this process (XREAD BLOCK), which is the floor
set by the SDK's flush, the supervisor and Redis, without the API replica.

    python -m bench.latency [--subscribers 50] [--points 500] [--interval 0.01] [--columns]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import httpx
import websockets
from redis.asyncio import Redis

from bench.common import REDIS, percentile, report, summary_ms
from bench.stack import Replica, Stack, cpu_seconds, production_stack
from ptw.api.ids import decode_id
from ptw.infra import redis_keys
from ptw.infra.live.redis_metric_log import decode_batch

QUERY = 'subscription($id: ID!) { runMetrics(runId: $id, keys: ["sent"]) { cursor points { value } } }'
# What the web UI's charts ask for: the batch as columns.
COLUMNS_QUERY = 'subscription($id: ID!) { runMetrics(runId: $id, keys: ["sent"]) { cursor columns } }'


async def subscriber(
    replica: Replica, key: str, run_id: str, subscribed: asyncio.Event, samples: list[float], columns: bool
) -> int:
    """Follow the run on ``replica`` until the subscription completes; latencies go to ``samples``."""
    url = replica.url.replace("http", "ws", 1) + "/graphql"
    received = 0
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"], max_queue=None) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}}))
        ack = json.loads(await ws.recv())
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"subscription refused: {ack}")
        op = str(uuid.uuid4())
        payload = {"query": COLUMNS_QUERY if columns else QUERY, "variables": {"id": run_id}}
        await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))
        subscribed.set()
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            if message.get("type") == "next":
                data = message["payload"]
                if data.get("errors"):
                    raise RuntimeError(f"runMetrics failed: {data['errors']}")
                batch = data["data"]["runMetrics"]
                if columns:
                    values = [v for column in batch["columns"].values() for v in column["values"]]
                else:
                    values = [point["value"] for point in batch["points"]]
                samples.extend(now - value for value in values)
                received += len(values)
            elif message.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif message.get("type") in ("complete", "error"):
                break
    return received


async def stream_reader(prefix: str, run_id: str, samples: list[float], done: asyncio.Event) -> None:
    """The baseline: the run's batches read straight from its Redis stream, as soon as they are added."""
    redis = Redis.from_url(REDIS)
    stream, last = redis_keys.metric_stream(prefix, run_id), "0-0"
    try:
        while not done.is_set():
            found = await redis.xread({stream: last}, count=100, block=100)
            now = time.time()
            for _, entries in found or ():
                for entry, fields in entries:
                    last = entry
                    samples.extend(now - p.value for p in decode_batch(run_id, entry, fields).points())
    finally:
        await redis.aclose()


async def one_run(
    stack: Stack, a: Replica, b: Replica, workflow: str, args: argparse.Namespace
) -> tuple[list[float], list[float], list[int], float]:
    go = stack.data_dir / f"go-{uuid.uuid4().hex}"
    params = {"go_file": str(go), "count": args.points, "interval": args.interval}
    async with httpx.AsyncClient(timeout=30) as http:
        run = await stack.start_run(http, a, workflow, params)
        events = [asyncio.Event() for _ in range(args.subscribers)]
        live: list[float] = []
        direct: list[float] = []
        followers = [
            asyncio.create_task(subscriber(b, stack.key, run, event, live, args.columns)) for event in events
        ]
        done = asyncio.Event()
        reader = asyncio.create_task(stream_reader(stack.prefix, decode_id(run, "Run"), direct, done))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
        await asyncio.sleep(1.0)  # the replica attaches every subscription to the run's stream
        cpu_before = cpu_seconds(b.process.pid)
        go.touch()
        counts = await asyncio.wait_for(asyncio.gather(*followers), args.points * args.interval + 60)
        replica_cpu = cpu_seconds(b.process.pid) - cpu_before
        done.set()
        await reader
        finished = await stack.wait_finished(http, a, run)
        if finished["status"] != "SUCCEEDED":
            raise RuntimeError(f"the latency run ended {finished['status']}: {finished['error']}")
    return live, direct, counts, replica_cpu


async def measure(args: argparse.Namespace) -> None:
    async with production_stack() as stack:
        a, b = await stack.replica(), await stack.replica()
        worker = stack.worker()
        await worker.ready()
        workflow = await stack.register("bench-clock", "bench.workflows:clock")
        try:
            live, direct, counts, replica_cpu = await one_run(stack, a, b, workflow, args)
        except Exception:
            print(stack.logs())
            raise
    expected = args.points * args.subscribers
    got = sum(counts)
    s, d = summary_ms(live), summary_ms(direct)
    met = s["p50_ms"] <= 20 and s["p99_ms"] <= 100 and got == expected
    report(
        "latency",
        [
            ("subscribers x points", f"{args.subscribers} x {args.points} every {args.interval * 1000:g} ms"),
            ("points received", f"{got:,} of {expected:,}"),
            (
                "logged → subscriber on replica B",
                f"p50 {s['p50_ms']} / p90 {s['p90_ms']} / p99 {s['p99_ms']} / max "
                f"{round(percentile(live, 100) * 1000, 1)} ms (target p50 ≤ 20, p99 ≤ 100)",
            ),
            ("replica B CPU", f"{replica_cpu:.2f} s for {args.points * args.interval:g} s of logging"),
            (
                "baseline: logged → Redis stream reader",
                f"p50 {d['p50_ms']} / p90 {d['p90_ms']} / p99 {d['p99_ms']} ms",
            ),
        ],
        {
            "subscribers": args.subscribers,
            "field": "columns" if args.columns else "points",
            "points": args.points,
            "interval_s": args.interval,
            "received": got,
            "expected": expected,
            **s,
            "baseline": d,
            "replica_b_cpu_s": round(replica_cpu, 2),
            "target_p50_ms": 20,
            "target_p99_ms": 100,
            "met": met,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--columns", action="store_true", help="subscribe to `columns` (as the web UI does)")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
