"""Training functions of the benchmarks, run by real `ptw worker` processes (the repository is on their
PYTHONPATH). They use the documented RunContext surface only, plus files the bench hands them in params."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def tight_loop(ctx: Any) -> dict[str, Any]:
    """``steps`` rows of ``keys`` metrics as fast as Python can log them (the ingest benchmark)."""
    keys = [f"k{i}" for i in range(int(ctx.params.get("keys", 10)))]
    steps = int(ctx.params.get("steps", 20_000))
    started = time.perf_counter()
    for step in range(steps):
        value = float(step)
        ctx.log({key: value for key in keys}, step=step)
    return {"points": steps * len(keys), "logging_s": time.perf_counter() - started}


def clock(ctx: Any) -> dict[str, Any]:
    """Once ``go_file`` exists (the subscribers are attached), log ``sent`` = time.time() every
    ``interval`` seconds, ``count`` times (the latency benchmark); receivers subtract it from their clock."""
    go = Path(ctx.params["go_file"])
    deadline = time.monotonic() + float(ctx.params.get("wait_s", 60))
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    interval, count = float(ctx.params.get("interval", 0.01)), int(ctx.params.get("count", 500))
    next_at = time.monotonic()
    for step in range(count):
        ctx.log({"sent": time.time()}, step=step)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    return {"points": count}


def entered(ctx: Any) -> dict[str, Any]:
    """Write when the training function was entered to ``stamp`` (the dispatch benchmark)."""
    now = time.time()
    path = Path(ctx.params["stamp"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(repr(now))
    tmp.replace(path)  # the bench never reads a half-written stamp
    return {}
