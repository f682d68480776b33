"""The epoch loop digits-mlp and digits-cnn share: logging, pruning, checkpoints, resume and cancellation.

Metrics: ``train_loss`` at every optimizer step (a global step counter starting at 1), ``val_loss`` and
``val_accuracy`` at the global step that ends each epoch, and both reported by name at the epoch
(``ctx.report(value, epoch, metric=...)``, epochs count from 1) so a search on either prunes by epoch.
A checkpoint holds ``{"model", "optimizer", "epoch", "step"}`` and is saved every
``CHECKPOINT_EVERY_EPOCHS`` epochs, after the last one and when the run is asked to stop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ptw.executors.workflows.digits_data import DigitsSplit
from ptw.executors.workflows.training_state import StepLosses, cpu_snapshot

CHECKPOINT_EVERY_EPOCHS = 5


def make_optimizer(model: nn.Module, params: dict[str, Any]) -> torch.optim.Optimizer:
    if params["optimizer"] == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=params["lr"], momentum=0.9, weight_decay=params["weight_decay"]
        )
    return torch.optim.Adam(model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])


def fit(
    ctx: Any,
    model: nn.Module,
    data: DigitsSplit,
    params: dict[str, Any],
    shard: tuple[int, int] = (0, 1),
    agree: Callable[[bool], bool] = bool,
) -> dict[str, float]:
    """Train ``model`` for ``params["epochs"]`` epochs, resuming from the run's checkpoint if it has one.

    A distributed run passes its ``(rank, world_size)`` as ``shard``: each rank trains on its share of
    every batch (the global batch stays ``batch_size``), and ``agree`` makes every rank stop at the same
    epoch when any of them is told to (a rank that left alone would leave the others waiting)."""
    model.to(ctx.device)
    data = data.to(ctx.device)
    optimizer = make_optimizer(model, params)
    epoch, step = _resume(ctx, model, optimizer)
    losses = StepLosses(ctx, "train_loss")
    started = time.perf_counter()
    val_loss, val_accuracy = math.nan, math.nan
    while epoch < params["epochs"]:
        epoch += 1
        model.train()
        for inputs, targets in _batches(data, params["batch_size"], params["seed"], epoch, shard):
            loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.add(loss, step)
        losses.flush()
        val_loss, val_accuracy = evaluate(model, data)
        ctx.log({"val_loss": val_loss, "val_accuracy": val_accuracy}, step)
        # By epoch, by name: trials of different batch sizes are compared at like points of training.
        ctx.report(val_accuracy, epoch, metric="val_accuracy")
        ctx.report(val_loss, epoch, metric="val_loss")
        # Stop requests are honoured at epoch ends: a checkpoint taken mid-epoch would make the retry
        # repeat steps it already logged.
        stopping = agree(ctx.cancelled)
        if stopping or epoch % CHECKPOINT_EVERY_EPOCHS == 0 or epoch == params["epochs"]:
            _save(ctx, model, optimizer, epoch, step)
        if stopping or agree(ctx.should_prune()):
            break
    if math.isnan(val_loss):  # resumed from a checkpoint of the final epoch: nothing left to train
        val_loss, val_accuracy = evaluate(model, data)
    return {
        "val_accuracy": val_accuracy,
        "val_loss": val_loss,
        "epochs": epoch,
        "train_seconds": time.perf_counter() - started,
    }


@torch.no_grad()
def evaluate(model: nn.Module, data: DigitsSplit) -> tuple[float, float]:
    """Validation loss and accuracy, over the whole validation set at once (it is a few hundred rows)."""
    model.eval()
    logits = model(data.x_val)
    loss = F.cross_entropy(logits, data.y_val)
    correct = (logits.argmax(dim=1) == data.y_val).sum()
    loss_value, correct_value = torch.stack([loss, correct.to(loss.dtype)]).tolist()
    return loss_value, correct_value / len(data.y_val)


def _batches(
    data: DigitsSplit, batch_size: int, seed: int, epoch: int, shard: tuple[int, int] = (0, 1)
) -> Iterator[tuple[Tensor, Tensor]]:
    # The order depends on (seed, epoch) alone, so a resumed run sees the batches it would have seen, and
    # the ranks of a distributed run see the same batches, each its own slice of them.
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(data.y_train), generator=generator).to(data.x_train.device)
    rank, world_size = shard
    for index in torch.split(order, batch_size):
        mine = index[rank::world_size]
        yield data.x_train[mine], data.y_train[mine]


def _resume(ctx: Any, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    state = ctx.load_checkpoint()
    if state is None:
        return 0, 0
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"]), int(state["step"])


def _save(ctx: Any, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, step: int) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step}
    ctx.save_checkpoint(cpu_snapshot(state), step=step)
