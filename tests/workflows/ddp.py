"""A small DistributedDataParallel training for the distributed-run tests: synthetic data, gloo on CPU.

Imported by the ranks that torch's elastic launcher starts for a real runner, so it uses only the
RunContext it is given (and torch)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any


def trains(ctx: Any) -> dict[str, Any]:
    """``steps`` steps of a DDP linear regression, each rank on its own shard; rank 0 logs ``loss`` and
    ``step_attempt`` every step and checkpoints every ``every`` steps; resumes after its checkpoint. With
    ``kill_rank`` and ``kill_at``, that rank kills itself at that step in the first attempt. Each rank
    writes its pid under ``pids`` (when given); with ``hang``, waits to be stopped."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    assert dist.is_initialized() and dist.get_world_size() == ctx.world_size
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(4, 1))
    if ctx.params.get("pids"):
        (Path(ctx.params["pids"]) / f"rank-{ctx.rank}").write_text(str(os.getpid()))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    state = ctx.load_checkpoint()
    start = 0
    if state is not None:
        model.module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"]) + 1
    generator = torch.Generator().manual_seed(1 + ctx.rank)
    weights = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    total, every = int(ctx.params.get("steps", 20)), int(ctx.params.get("every", 4))
    for step in range(start, total):
        while ctx.params.get("hang") and not ctx.cancelled:
            time.sleep(0.05)
        if ctx.cancelled:
            return {"cancelled_at": step, "rank": ctx.rank}
        if ctx.attempt == 1 and ctx.rank == ctx.params.get("kill_rank") and step == ctx.params.get("kill_at"):
            os.kill(os.getpid(), signal.SIGKILL)
        x = torch.randn(16, 4, generator=generator)
        loss = torch.nn.functional.mse_loss(model(x), x @ weights.T)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        time.sleep(float(ctx.params.get("step_seconds", 0.0)))
        ctx.log({"loss": loss.item(), "step_attempt": float(ctx.attempt)}, step=step)
        if step % every == every - 1:
            ctx.save_checkpoint(
                {"model": model.module.state_dict(), "optimizer": optimizer.state_dict(), "step": step},
                step=step,
            )
    weight = model.module.weight.detach()
    same = torch.zeros(1) + weight.sum()
    dist.all_reduce(same)  # every rank holds the same weights after DDP's averaged steps
    return {
        "rank": ctx.rank,
        "world_size": ctx.world_size,
        "is_main": ctx.is_main,
        "resumed_from": start,
        "weights_agree": abs(same.item() - ctx.world_size * weight.sum().item()) < 1e-5,
    }
