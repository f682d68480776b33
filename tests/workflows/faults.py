"""Training functions for fault-injection tests: a resumable step loop that checkpoints, and a crasher.

Imported by real child runners (``tests/e2e/test_faults.py``, ``tests/integration/test_reliability.py``),
so they use only the RunContext they are given."""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def value_at(step: int, attempt: int) -> float:
    """What attempt ``attempt`` logs at ``step``: a test tells the attempts' points apart by it."""
    return attempt * 100_000.0 + step


def steps(ctx: Any) -> dict[str, Any]:
    """``steps`` steps of ``step_seconds`` each, logging ``value_at(step, attempt)`` under ``x`` at every
    step and checkpointing ``{"step": s}`` every ``every`` steps. Resumes after its latest checkpoint;
    when its worker stops (``ctx.stopping``) it checkpoints where it is and returns."""
    total = int(ctx.params.get("steps", 40))
    pause = float(ctx.params.get("step_seconds", 0.1))
    every = int(ctx.params.get("every", 5))
    state = ctx.load_checkpoint()
    start = 0 if state is None else int(state["step"]) + 1
    for step in range(start, total):
        if ctx.stopping:
            if step > start:  # what this attempt did, for the next one to resume from
                ctx.save_checkpoint({"step": step - 1}, step=step - 1)
            return {"stopped_at": step, "attempt": ctx.attempt}
        time.sleep(pause)
        ctx.log({"x": value_at(step, ctx.attempt)}, step=step)
        if step % every == every - 1:
            ctx.save_checkpoint({"step": step}, step=step)
    return {"attempt": ctx.attempt, "resumed_from": start, "steps": total}


def crashes(ctx: Any) -> None:
    """Dies without a word every time, like a segfault or the out-of-memory killer."""
    ctx.log({"x": 1.0}, step=0)
    print(f"attempt {ctx.attempt} going down", file=sys.stderr, flush=True)
    time.sleep(float(ctx.params.get("after", 0.2)))
    os._exit(3)
