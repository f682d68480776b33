"""A training function that logs several metrics and reports yet another, for the objective a search names.

Every step it logs ``loss`` (least at x = 2), ``accuracy`` (most at x = -1) and ``x``, reports
``-(x - 5)^2`` without naming a metric, reports ``decoy`` (least at x = 5) by name, and reports
``epoch_loss`` (least at x = 0) by name only, never logging it. So whichever of these a search names,
its optimum is somewhere else than every other's.
"""

from __future__ import annotations

import time
from typing import Any


def train(ctx: Any) -> dict[str, Any]:
    x = float(ctx.params["x"])
    steps = int(ctx.params.get("steps", 6))
    delay = float(ctx.params.get("delay", 0.02))
    loss = 0.0
    for step in range(steps):
        left = steps - 1 - step  # what is left to learn: a poor trial looks poor early
        loss = (x - 2.0) ** 2 + 0.5 * left
        ctx.log({"loss": loss, "accuracy": 1.0 - (x + 1.0) ** 2 / 100 - 0.01 * left, "x": x}, step=step)
        ctx.report(-((x - 5.0) ** 2), step)
        ctx.report((x - 5.0) ** 2, step, metric="decoy")
        ctx.report(x**2 + left, step, metric="epoch_loss")
        time.sleep(delay)
        if ctx.should_prune():
            break
    return {"final_loss": loss}
