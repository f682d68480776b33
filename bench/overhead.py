"""Training-loop overhead of ``ctx.log`` (10 keys every step) against the same loop without logging, and
the cost of one ``ctx.log`` call of 10 keys.

Targets (issue 12): ≤ 2 % slower on a loop of 0.2-0.5 ms a step (a 2-layer MLP on a 32-sample batch, one
thread); ≤ 2 µs a call. The RunContext is the real SDK writing to a real pipe that another process drains,
as the supervisor would. Bare and logged loops alternate (interleaved repetitions), and the medians are
compared. The call figure is the best of ``--repeats`` timings of ``--calls`` calls with one prepared dict,
the background sender running.

    python -m bench.overhead [--steps 5000] [--repeats 7] [--calls 200000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ptw.executors.sdk import MessageChannel, RunContext

KEYS = [f"metric_{i}" for i in range(10)]
BATCH = 32


def small_model() -> tuple[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    return model, optimizer, torch.randn(BATCH, 64), torch.randint(0, 10, (BATCH,))


def train(steps: int, ctx: RunContext | None) -> float:
    model, optimizer, x, y = small_model()
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if ctx is not None:
            value = float(loss.detach())
            ctx.log({key: value + i for i, key in enumerate(KEYS)}, step=step)
        elif step >= 0:
            float(loss.detach())  # the bare loop reads the loss too: only the logging differs
    return time.perf_counter() - started


@contextmanager
def context(artifacts: Path) -> Iterator[RunContext]:
    """A RunContext whose messages a second process reads and throws away."""
    drain = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert drain.stdin is not None
    ctx = RunContext(
        run_id="bench",
        attempt=1,
        params={},
        device=torch.device("cpu"),
        artifacts_dir=artifacts,
        channel=MessageChannel(drain.stdin),
    )
    try:
        yield ctx
    finally:
        ctx.close()
        drain.stdin.close()
        drain.wait()


def logged(steps: int, artifacts: Path) -> float:
    with context(artifacts) as ctx:
        return train(steps, ctx)


def call_cost(calls: int, repeats: int, artifacts: Path) -> float:
    """Seconds of one ``ctx.log`` of 10 keys: the best of ``repeats`` timings of ``calls`` calls."""
    metrics = {key: 0.5 + i for i, key in enumerate(KEYS)}
    best = float("inf")
    with context(artifacts) as ctx:
        log = ctx.log
        for _ in range(repeats):
            started = time.perf_counter()
            for step in range(calls):
                log(metrics, step)
            best = min(best, (time.perf_counter() - started) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train(200, None)  # warm-up
    bare, with_log = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            bare.append(train(args.steps, None))
            with_log.append(logged(args.steps, Path(tmp)))
        per_call = call_cost(args.calls, args.repeats, Path(tmp))
    b, w = statistics.median(bare), statistics.median(with_log)
    overhead = (w - b) / b * 100
    print(f"{'loop':<22}{'median s':>10}{'ms/step':>10}")
    print(f"{'bare':<22}{b:>10.3f}{b / args.steps * 1000:>10.3f}")
    print(f"{'ctx.log 10 keys/step':<22}{w:>10.3f}{w / args.steps * 1000:>10.3f}")
    print(f"overhead: {overhead:+.2f} % (target ≤ 2 %); the loop's step: {b / args.steps * 1000:.3f} ms")
    print(f"ctx.log of 10 keys: {per_call * 1e6:.2f} µs a call (target ≤ 2 µs)")
    print(
        json.dumps(
            {
                "bench": "overhead",
                "steps": args.steps,
                "repeats": args.repeats,
                "batch": BATCH,
                "bare_s": round(b, 4),
                "logged_s": round(w, 4),
                "step_ms": round(b / args.steps * 1000, 4),
                "overhead_pct": round(overhead, 2),
                "target_pct": 2.0,
                "log_call_us": round(per_call * 1e6, 3),
                "target_call_us": 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
