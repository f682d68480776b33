"""A training script that tracks itself with ``ptw.init()``: run as a plain process by the tracking client
tests, and registered as a workflow (``tests.workflows.tracked:train``) to show it works both ways.

As a process: ``python -m tests.workflows.tracked MODE STEPS`` where MODE is ok, raise, kill or wait
(wait: log, then sleep until interrupted)."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import ptw

KEYS = ("loss", "acc", "lr")


def train(ctx: Any = None, mode: str = "ok", steps: int = 50) -> dict[str, Any]:
    with ptw.init(project="default", name=f"tracked-{mode}", params={"steps": steps}, tags=["e2e"]) as run:
        steps = int(run.params.get("steps", steps))
        for step in range(steps):
            run.log({"loss": 1.0 / (step + 1), "acc": step / steps, "lr": 0.1}, step=step)
        run.summary["best_loss"] = 1.0 / steps
        if mode == "raise":
            raise ValueError("boom at the end")
        if mode == "kill":
            time.sleep(1.5)  # the points reach the server; then the process vanishes without a word
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "wait":
            print("waiting", flush=True)
            while True:
                time.sleep(0.1)
    return {"steps": steps}


if __name__ == "__main__":
    train(None, sys.argv[1], int(sys.argv[2]))
