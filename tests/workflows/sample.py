"""Small training functions that succeed, log, print, raise, hang, checkpoint or die, for executor tests.

They are imported by real child runners, so they only use the RunContext they are given (and torch)."""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from typing import Any

import numpy as np
import torch


def logs(ctx: Any) -> dict[str, Any]:
    """Logs ``steps`` steps of two keys (and one NaN), prints, and returns a summary of odd types."""
    steps = int(ctx.params.get("steps", 100))
    for step in range(steps):
        ctx.log({"loss": 1.0 / (step + 1), "acc": torch.tensor(step / steps)}, step=step)
    ctx.log({"loss": math.nan}, step=steps)
    print("trained", steps, "steps")
    return {"steps": steps, "final_loss": torch.tensor(1.0 / steps), "best": np.float32(0.5), "obj": object()}


def raises(ctx: Any) -> None:
    ctx.log({"loss": 1.0}, step=0)
    print("about to fail", file=sys.stderr)
    _deep_failure(3)


def _deep_failure(depth: int) -> None:
    if depth == 0:
        raise ValueError("boom: the loss exploded")
    _deep_failure(depth - 1)


def hangs(ctx: Any) -> None:
    """Ignores cancellation and SIGTERM alike: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctx.log({"alive": 1.0}, step=0)
    while True:
        time.sleep(0.05)


def sleeps(ctx: Any) -> dict[str, Any]:
    """Sleeps until cancelled (then returns early) or for ``seconds``."""
    deadline = time.monotonic() + float(ctx.params.get("seconds", 60))
    while time.monotonic() < deadline and not ctx.cancelled:
        time.sleep(0.02)
    return {"cancelled": ctx.cancelled}


def checkpoints(ctx: Any) -> dict[str, Any]:
    """Resumes from the latest checkpoint; a first attempt saves one at step 5, then waits to be lost."""
    state = ctx.load_checkpoint()
    if state is None:
        ctx.save_checkpoint({"step": 5, "weights": torch.arange(3.0)}, step=5)
        assert ctx.load_checkpoint()["step"] == 5  # this attempt's own checkpoint comes first
        while True:
            time.sleep(0.05)
    return {"resumed_step": state["step"], "weights": state["weights"], "attempt": ctx.attempt}


def counts(ctx: Any) -> dict[str, Any]:
    """Appends a line to ``path`` each time it is called, so a test can count deliveries."""
    with open(ctx.params["path"], "a") as f:
        f.write(f"{ctx.run_id} {ctx.attempt} {os.getpid()}\n")
    time.sleep(float(ctx.params.get("seconds", 0)))
    return {"pid": os.getpid()}


def enters(ctx: Any) -> dict[str, Any]:
    """Returns when it was called, for measuring dispatch latency."""
    return {"entered_at": time.time(), "device": str(ctx.device)}


def logs_then_dies(ctx: Any) -> None:
    """A point sent (a row logged while nothing is waiting goes at once), then the process is gone."""
    ctx.log({"loss": 1.0}, step=0)
    time.sleep(0.01)
    os._exit(5)


def dies(ctx: Any) -> None:
    print("going down", file=sys.stderr, flush=True)
    os._exit(7)
