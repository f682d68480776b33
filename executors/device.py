"""What a slot can run, decided by the device its runner found, and how many CPU threads each slot gets."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def resource_classes_for(device: str) -> tuple[str, ...]:
    """A GPU executor takes GPU runs and CPU runs; a CPU executor only CPU runs."""
    return ("cpu", "gpu") if device.startswith("cuda") else ("cpu",)


def threads_per_slot(slots: int) -> int:
    """Slots share the machine's cores rather than each one oversubscribing all of them."""
    return max(1, (os.cpu_count() or 1) // max(1, slots))


def pick_device() -> torch.device:
    """The device a run gets: the first GPU when torch sees one, else the CPU. Imports torch."""
    import torch

    return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")


def device_name(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
