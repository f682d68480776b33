"""digits-cnn: a small conv net on scikit-learn's digits upsampled to 16x16; the performance-tuning showcase.

Entrypoint ``executors.workflows.digits_cnn:train``. Params (see ``BUILTINS``): lr, channels, epochs,
batch_size, optimizer ("adam" | "sgd"), weight_decay, seed. Logs and returns what digits-mlp does:
``train_loss`` every step, ``val_loss`` / ``val_accuracy`` every epoch, summary
``{val_accuracy, val_loss, epochs, train_seconds}``.

Tuning hook: ``tuning_target(params, device) -> (model, (inputs, targets), loss_fn)`` gives a fresh model
on ``device`` (train mode, seeded by ``params["seed"]``), one training batch of ``params["batch_size"]``
images ``(N, 1, 16, 16)`` float32 with int64 labels ``(N,)``, both on ``device``, and a loss function used
as ``loss_fn(model(inputs), targets) -> scalar Tensor``. ``params`` may be partial; defaults fill the rest.
A tuner may time forward+backward on it under torch.compile, AMP, channels_last or other batch sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ptw.executors.workflows import defaults_of
from ptw.executors.workflows.digits_data import NUM_CLASSES, image_digits
from ptw.executors.workflows.digits_training import fit

IMAGE_SIZE = 16


class DigitsCNN(nn.Module):
    """Two 3x3 conv stages, each halving the image, then a small classifier."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        flat = 2 * channels * (IMAGE_SIZE // 4) ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, NUM_CLASSES)
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images))


def train(ctx: Any) -> dict[str, float]:
    params = {**defaults_of("digits-cnn"), **ctx.params}
    torch.manual_seed(params["seed"])
    model = DigitsCNN(params["channels"])
    return fit(ctx, model, image_digits(params["seed"], IMAGE_SIZE), params)


def tuning_target(
    params: dict[str, Any], device: torch.device
) -> tuple[nn.Module, tuple[Tensor, Tensor], Callable[[Tensor, Tensor], Tensor]]:
    params = {**defaults_of("digits-cnn"), **params}
    torch.manual_seed(params["seed"])
    model = DigitsCNN(params["channels"]).to(device).train()
    data = image_digits(params["seed"], IMAGE_SIZE)
    # Batch sizes above the training set repeat it, so a tuner may try any size the schema allows.
    index = torch.arange(params["batch_size"]) % len(data.y_train)
    batch = (data.x_train[index].to(device), data.y_train[index].to(device))
    return model, batch, F.cross_entropy
