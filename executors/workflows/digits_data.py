"""scikit-learn's bundled 8x8 digits as standardized train/validation tensors (nothing is downloaded)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import Tensor

VALIDATION_FRACTION = 0.2
NUM_CLASSES = 10


@dataclass(frozen=True)
class DigitsSplit:
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor

    def to(self, device: torch.device) -> DigitsSplit:
        return DigitsSplit(
            self.x_train.to(device), self.y_train.to(device), self.x_val.to(device), self.y_val.to(device)
        )


@functools.cache
def _split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    # Stratified so that a small validation set still holds every class in proportion.
    return tuple(
        train_test_split(
            digits.data.astype(np.float32),
            digits.target.astype(np.int64),
            test_size=VALIDATION_FRACTION,
            random_state=seed,
            stratify=digits.target,
        )
    )


def flat_digits(seed: int) -> DigitsSplit:
    """Rows of 64 pixels, each pixel standardized with the training rows' mean and deviation."""
    x_train, x_val, y_train, y_val = _split(seed)
    scaler = StandardScaler().fit(x_train)
    return DigitsSplit(
        torch.from_numpy(scaler.transform(x_train).astype(np.float32)),
        torch.tensor(y_train),
        torch.from_numpy(scaler.transform(x_val).astype(np.float32)),
        torch.tensor(y_val),
    )


def image_digits(seed: int, size: int = 16) -> DigitsSplit:
    """Images (1, size, size), standardized with one mean and deviation so strokes keep their contrast."""
    x_train, x_val, y_train, y_val = _split(seed)
    mean, std = float(x_train.mean()), float(x_train.std())

    def images(rows: np.ndarray) -> Tensor:
        pixels = (torch.from_numpy(rows) - mean) / std
        return F.interpolate(
            pixels.view(-1, 1, 8, 8), size=(size, size), mode="bilinear", align_corners=False
        )

    return DigitsSplit(images(x_train), torch.tensor(y_train), images(x_val), torch.tensor(y_val))
