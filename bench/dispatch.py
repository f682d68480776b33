"""Dispatch: ``startRun`` (GraphQL over HTTP to an API replica) → the training function entered.

Target (DESIGN §10): p50 ≤ 100 ms, back to back and in bursts. Production wiring: `ptw serve
--executors 0` and one `ptw worker`. The training function writes ``time.time()`` to a file on entry; the
bench subtracts the time it sent ``startRun``. Three shapes:

- back to back: each run started the moment the previous one is seen finished (nothing waits for the
  worker to be warm again: the way a search's trials arrive);
- burst: ``--burst`` runs (default 8) started at once on a worker with 2 slots, ``--bursts`` times (default
  5, the slots warm again between them); the percentiles are over all their runs (one burst's 8 runs
  gave p50s from 70 to 140 ms on the same build);
- baseline, in the same run: back to back against a worker polling arq's queue every 500 ms (arq's
  default, ``PTW_WORKER_POLL_DELAY=0.5``) instead of the product's 20 ms.

Cold start: a run queued while no worker runs, then `ptw worker` started; timed from the worker's start
(and from ``startRun``) to the function entered (target ≤ 5 s).

    python -m bench.dispatch [--runs 15] [--burst 8] [--bursts 5] [--cold 2]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

import httpx

from bench.common import report, summary_ms
from bench.stack import Replica, Stack, production_stack


async def stamp_of(path: Path, within: float = 60.0) -> float:
    """The time written by the training function, once the file is there."""
    deadline = time.monotonic() + within
    while (stamp := read_stamp(path)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the run never entered its training function ({path} missing)")
        await asyncio.sleep(0.001)
    return stamp


def read_stamp(path: Path) -> float | None:
    # A stat a millisecond: cheaper than anything that would wake this process when the file appears.
    try:
        return float(path.read_text())
    except FileNotFoundError:
        return None


async def dispatched(
    stack: Stack, http: httpx.AsyncClient, api: Replica, workflow: str
) -> tuple[str, Path, float]:
    stamp = stack.data_dir / f"entered-{uuid.uuid4().hex}"
    sent = time.time()
    return await stack.start_run(http, api, workflow, {"stamp": str(stamp)}), stamp, sent


async def succeeded(stack: Stack, http: httpx.AsyncClient, api: Replica, run: str) -> None:
    finished = await stack.wait_finished(http, api, run)
    if finished["status"] != "SUCCEEDED":
        raise RuntimeError(f"the dispatch run ended {finished['status']}: {finished['error']}")


async def back_to_back(
    stack: Stack, http: httpx.AsyncClient, api: Replica, workflow: str, runs: int
) -> list[float]:
    """Each run started as soon as the previous one is seen finished."""
    samples = []
    for _ in range(runs + 1):  # the first one warms caches on the way (the API's, the worker's)
        run, stamp, sent = await dispatched(stack, http, api, workflow)
        samples.append(await stamp_of(stamp) - sent)
        await succeeded(stack, http, api, run)
    return samples[1:]


async def burst(stack: Stack, http: httpx.AsyncClient, api: Replica, workflow: str, runs: int) -> list[float]:
    """``runs`` runs started at once (each startRun sent right after the previous one answered)."""
    started = [await dispatched(stack, http, api, workflow) for _ in range(runs)]
    samples = [await stamp_of(stamp) - sent for _, stamp, sent in started]
    for run, _, _ in started:
        await succeeded(stack, http, api, run)
    return samples


async def cold_start(
    stack: Stack, http: httpx.AsyncClient, api: Replica, workflow: str
) -> tuple[float, float]:
    """(worker started → entered, startRun → entered) for a run queued while no worker runs."""
    stamp = stack.data_dir / f"entered-{uuid.uuid4().hex}"
    sent = time.time()
    run = await stack.start_run(http, api, workflow, {"stamp": str(stamp)})
    worker = stack.worker()
    entered = await stamp_of(stamp)
    await stack.wait_finished(http, api, run)
    worker.stop()
    return entered - worker.started_at, entered - sent


async def measure(args: argparse.Namespace) -> None:
    async with production_stack() as stack:
        api = await stack.replica()
        workflow = await stack.register("bench-entered", "bench.workflows:entered")
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                results = {}
                for name, poll in (("product", None), ("arq default", "0.5")):
                    worker = stack.worker(settings={"PTW_WORKER_POLL_DELAY": poll} if poll else None)
                    await worker.ready()
                    await worker.warm()
                    results[name] = await back_to_back(stack, http, api, workflow, args.runs)
                    worker.stop()
                worker = stack.worker(slots=2)
                await worker.ready()
                await worker.warm(slots=2)
                await back_to_back(stack, http, api, workflow, 1)  # caches on the way, as above
                results["burst"], burst_p50s = [], []
                for _ in range(args.bursts):
                    await worker.warm(slots=2)
                    samples = await burst(stack, http, api, workflow, args.burst)
                    results["burst"] += samples
                    burst_p50s.append(summary_ms(samples)["p50_ms"])
                worker.stop()
                cold = [await cold_start(stack, http, api, workflow) for _ in range(args.cold)]
        except Exception:
            print(stack.logs())
            raise
    warm, arq = summary_ms(results["product"]), summary_ms(results["arq default"])
    bursts = summary_ms(results["burst"])
    cold_worker = summary_ms([c[0] for c in cold])
    cold_start_run = summary_ms([c[1] for c in cold])
    report(
        "dispatch",
        [
            (
                "back to back, poll 20 ms (product)",
                f"p50 {warm['p50_ms']} / p90 {warm['p90_ms']} ms, n={warm['n']} (target p50 ≤ 100 ms)",
            ),
            (
                f"{args.bursts} bursts of {args.burst} on 2 slots",
                f"p50 {bursts['p50_ms']} / p90 {bursts['p90_ms']} ms, n={bursts['n']} (target p50 ≤ 100 ms)",
            ),
            ("each burst's p50", ", ".join(f"{p:.0f}" for p in burst_p50s) + " ms"),
            ("back to back, poll 500 ms (arq default)", f"p50 {arq['p50_ms']} / p90 {arq['p90_ms']} ms"),
            (
                "cold: worker started → entered",
                f"p50 {cold_worker['p50_ms'] / 1000:.2f} s, n={cold_worker['n']} (target ≤ 5 s)",
            ),
            ("cold: startRun → entered", f"p50 {cold_start_run['p50_ms'] / 1000:.2f} s"),
        ],
        {
            "back_to_back": warm,
            "burst": bursts,
            "burst_p50s_ms": burst_p50s,
            "baseline_arq_default_poll": arq,
            "cold_worker_start_to_entered": cold_worker,
            "cold_start_run_to_entered": cold_start_run,
            "target_p50_ms": 100,
            "target_cold_s": 5,
            "met": warm["p50_ms"] <= 100 and bursts["p50_ms"] <= 100 and cold_worker["p50_ms"] <= 5000,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--burst", type=int, default=8)
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--cold", type=int, default=2)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
