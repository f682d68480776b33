"""A training function that draws the curves it is told to, for the dashboard's browser tests: ``loss``
falls as ``scale / (step + 1)``, ``accuracy`` rises, a checkpoint is saved every
``checkpoint_every`` steps, and the summary is
``params["summary"]`` with the final loss."""

from __future__ import annotations

import time
from typing import Any


def curve(ctx: Any) -> dict[str, Any]:
    scale = float(ctx.params.get("scale", 1.0))
    steps = int(ctx.params.get("steps", 20))
    delay = float(ctx.params.get("delay", 0.0))
    checkpoint_every = int(ctx.params.get("checkpoint_every", 0))
    loss = scale
    for step in range(steps):
        loss = scale / (step + 1)
        ctx.log({"loss": loss, "accuracy": 1.0 - 1.0 / (step + 2)}, step=step)
        if checkpoint_every and step % checkpoint_every == 0:
            ctx.save_checkpoint({"step": step}, step=step)
        time.sleep(delay)
        if ctx.cancelled:
            break
    return {**dict(ctx.params.get("summary") or {}), "final_loss": loss}
