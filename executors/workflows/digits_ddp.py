"""digits-ddp: digits-mlp trained with DistributedDataParallel, each rank on its share of every batch.

Entrypoint ``executors.workflows.digits_ddp:train``, run with ``processesPerNode`` (default 2) by torch's
elastic launcher; the process group is set up before it is called. Params: those of digits-mlp but
dropout (lr, hidden, epochs, batch_size: the global batch, optimizer, weight_decay, seed). With the same
global batch, DDP's averaged gradients are the single process's: the result matches a 1-process run of
this workflow within ``TOLERANCE`` (float sums in another order, and the last, uneven batch of an epoch).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ptw.executors.workflows import defaults_of
from ptw.executors.workflows.digits_data import flat_digits
from ptw.executors.workflows.digits_mlp import DigitsMLP
from ptw.executors.workflows.digits_training import fit

# |val_accuracy(2 processes) - val_accuracy(1 process)| and the same for val_loss, default params.
TOLERANCE = {"val_accuracy": 0.01, "val_loss": 0.01}


def agree(flag: bool) -> bool:
    """True on every rank when it is True on any: the ranks stop together."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def train(ctx: Any) -> dict[str, Any]:
    params = {**defaults_of("digits-ddp"), **ctx.params}
    torch.manual_seed(params["seed"])  # the same initial weights on every rank (DDP broadcasts rank 0's)
    model: torch.nn.Module = DigitsMLP(params["hidden"], 0.0).to(ctx.device)
    if dist.is_initialized():
        model = DistributedDataParallel(model)
    data = flat_digits(params["seed"])
    summary: dict[str, Any] = dict(fit(ctx, model, data, params, (ctx.rank, ctx.world_size), agree))
    backend = str(dist.get_backend()) if dist.is_initialized() else None
    return {**summary, "world_size": ctx.world_size, "backend": backend}
