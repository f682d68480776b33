"""A training function that checkpoints every step and saves files, for artifact retention and download.

Step ``s`` logs ``loss = |s - best|`` and saves the checkpoint ``{"step": s}``, so the best checkpoint by
``loss`` is the one of step ``best``; then it saves ``notes.txt`` from bytes and ``table.csv`` from a path.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any


def keeps(ctx: Any) -> dict[str, Any]:
    steps = int(ctx.params.get("steps", 8))
    best = int(ctx.params.get("best", 2))
    for step in range(steps):
        ctx.log({"loss": float(abs(step - best))}, step=step)
        time.sleep(0.1)  # the point is stored before the checkpoint that may weigh it is
        ctx.save_checkpoint({"step": step}, step=step)
    ctx.save_artifact("notes.txt", b"what this run learned\n")
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "table.csv"
        table.write_text("step,loss\n" + "".join(f"{s},{abs(s - best)}\n" for s in range(steps)))
        ctx.save_artifact("table.csv", table)
    return {"steps": steps}
