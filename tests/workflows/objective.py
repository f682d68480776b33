"""A training function with a known optimum, for searches: it reports ``-(x - 3)^2`` minus what is left to
learn at every step, so a trial's final value is ``-(x - 3)^2`` and a poor one looks poor early."""

from __future__ import annotations

import time
from typing import Any


def quadratic(ctx: Any) -> dict[str, Any]:
    x = float(ctx.params["x"])
    steps = int(ctx.params.get("steps", 8))
    delay = float(ctx.params.get("delay", 0.05))
    value = 0.0
    for step in range(steps):
        value = -((x - 3.0) ** 2) - 0.5 * (steps - 1 - step)
        ctx.log({"objective": value}, step=step)
        ctx.report(value, step)
        time.sleep(delay)
        if ctx.should_prune():
            return {"objective": value, "pruned_at": step}
    return {"objective": value}
