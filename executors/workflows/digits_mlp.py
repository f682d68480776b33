"""digits-mlp: a multilayer perceptron on scikit-learn's 8x8 digits; trains in seconds on one CPU core.

Entrypoint ``executors.workflows.digits_mlp:train``. Params (see ``BUILTINS``): lr, hidden, epochs,
batch_size, optimizer ("adam" | "sgd"), weight_decay, dropout, seed. Logs ``train_loss`` every step and
``val_loss`` / ``val_accuracy`` every epoch, reports ``val_accuracy`` per epoch for pruning, and returns
``{val_accuracy, val_loss, epochs, train_seconds}``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ptw.executors.workflows import defaults_of
from ptw.executors.workflows.digits_data import NUM_CLASSES, flat_digits
from ptw.executors.workflows.digits_training import fit

PIXELS = 64


class DigitsMLP(nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(PIXELS, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, NUM_CLASSES),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.layers(pixels)


def train(ctx: Any) -> dict[str, float]:
    params = {**defaults_of("digits-mlp"), **ctx.params}
    torch.manual_seed(params["seed"])
    model = DigitsMLP(params["hidden"], params["dropout"])
    return fit(ctx, model, flat_digits(params["seed"]), params)
