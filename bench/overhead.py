"""Training-loop overhead of ``ctx.log`` (10 keys every step) against the same loop without logging.

Target (DESIGN §10): ≤ 2 % slower. The RunContext is the real SDK writing to a real pipe that another
process drains, as the supervisor would. Bare and logged loops alternate, and the medians are compared.

    python -m bench.overhead [--steps 3000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from ptw.executors.sdk import MessageChannel, RunContext

KEYS = [f"metric_{i}" for i in range(10)]


def small_model() -> tuple[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    return model, optimizer, torch.randn(64, 64), torch.randint(0, 10, (64,))


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


def logged(steps: int, artifacts: Path) -> float:
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
        return train(steps, ctx)
    finally:
        ctx.close()
        drain.stdin.close()
        drain.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train(200, None)  # warm-up
    bare, with_log = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            bare.append(train(args.steps, None))
            with_log.append(logged(args.steps, Path(tmp)))
    b, w = statistics.median(bare), statistics.median(with_log)
    overhead = (w - b) / b * 100
    print(f"{'loop':<22}{'median s':>10}{'steps/s':>10}")
    print(f"{'bare':<22}{b:>10.3f}{args.steps / b:>10.0f}")
    print(f"{'ctx.log 10 keys/step':<22}{w:>10.3f}{args.steps / w:>10.0f}")
    print(f"overhead: {overhead:+.2f} % (target ≤ 2 %)")
    print(
        json.dumps(
            {
                "bench": "overhead",
                "steps": args.steps,
                "repeats": args.repeats,
                "bare_s": round(b, 4),
                "logged_s": round(w, 4),
                "overhead_pct": round(overhead, 2),
                "target_pct": 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
