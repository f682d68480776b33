"""Devices: which GPUs this machine has, which one each run gets, what a slot can run, threads per slot.

The parent processes (``ptw worker``, the autoscaler) never import torch: they count GPUs with
``nvidia-smi`` and give each child its own through ``CUDA_VISIBLE_DEVICES``; the child then sees exactly
one GPU as ``cuda:0``. Without ``nvidia-smi`` (a CPU machine) nothing is assigned and children use the CPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"


def resource_classes_for(device: str, pools: Sequence[str] = ()) -> tuple[str, ...]:
    """A GPU executor takes GPU runs and CPU runs; a CPU executor only CPU runs. An executor bound to
    pools takes those pools' runs only (``research/cpu``), never the shared pool's or another's."""
    kinds = ("cpu", "gpu") if device.startswith("cuda") else ("cpu",)
    return tuple(f"{pool}/{kind}" for pool in pools for kind in kinds) if pools else kinds


def threads_per_slot(slots: int) -> int:
    """Slots share the machine's cores rather than each one oversubscribing all of them."""
    return max(1, (os.cpu_count() or 1) // max(1, slots))


def pick_device() -> torch.device:
    """The device a run gets: the first GPU when torch sees one, else the CPU. Imports torch."""
    import torch

    return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")


def device_name(device: torch.device) -> str:
    """``cpu``, or the GPU with its model and memory, e.g. ``cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB)``."""
    import torch

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{device} ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    return str(device)


@dataclass(frozen=True)
class Gpu:
    id: str  # what CUDA_VISIBLE_DEVICES takes: the UUID, immune to CUDA's and nvidia-smi's orderings
    index: str
    name: str
    memory_mib: int


def _nvidia_smi() -> str:
    """nvidia-smi's CSV of the GPUs, or "" where there is none (or the driver does not answer)."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return ""
    query = "--query-gpu=index,uuid,name,memory.total"
    try:
        done = subprocess.run(
            [binary, query, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def parse_gpus(csv: str) -> list[Gpu]:
    gpus = []
    for line in csv.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        index, uuid, name, memory = parts
        gpus.append(Gpu(uuid, index, name, int(memory) if memory.isdigit() else 0))
    return gpus


def visible_gpus(env: Mapping[str, str] | None = None, csv: str | None = None) -> list[Gpu]:
    """The GPUs this process may use: the machine's, narrowed by its own ``CUDA_VISIBLE_DEVICES``."""
    env = os.environ if env is None else env
    gpus = parse_gpus(_machine_gpus() if csv is None else csv)
    visible = env.get(VISIBLE_DEVICES)
    if visible is None:
        return gpus
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    # CUDA stops at the first entry it cannot match ("-1", "none"): so do we.
    chosen: list[Gpu] = []
    for entry in wanted:
        match = next((g for g in gpus if entry in (g.id, g.index)), None)
        if match is None:
            break
        chosen.append(match)
    return chosen


@cache
def _machine_gpus() -> str:
    return _nvidia_smi()


class Holder(Protocol):
    """A child process holding a GPU: asyncio's and subprocess's processes both fit."""

    @property
    def returncode(self) -> int | None: ...


class GpuLease:
    """One child's claim on one GPU, from before the child starts until it has exited."""

    def __init__(self, gpu: Gpu) -> None:
        self.gpu = gpu
        self.holder: Holder | None = None
        self.released = False

    @property
    def live(self) -> bool:
        return not self.released and (self.holder is None or self.holder.returncode is None)

    def env(self) -> dict[str, str]:
        return {VISIBLE_DEVICES: self.gpu.id}

    def release(self) -> None:
        self.released = True


class GpuLeases:
    """Hands each child its own GPU (the least shared one when there are more children than GPUs).

    Taken before the child is spawned, so two children starting at once never get the same GPU; freed
    when the child exits, seen lazily through its ``returncode``."""

    def __init__(self, gpus: Sequence[Gpu]) -> None:
        self.gpus = list(gpus)
        self._leases: list[GpuLease] = []

    @classmethod
    def of_this_process(cls) -> GpuLeases:
        return cls(visible_gpus())

    def lease(self) -> GpuLease | None:
        """A lease on the least used GPU, or None where there is no GPU (the child uses the CPU)."""
        if not self.gpus:
            return None
        self._leases = [lease for lease in self._leases if lease.live]
        used = {g.id: 0 for g in self.gpus}
        for lease in self._leases:
            used[lease.gpu.id] += 1
        gpu = min(self.gpus, key=lambda g: used[g.id])
        lease = GpuLease(gpu)
        self._leases.append(lease)
        return lease


@cache
def runner_gpus() -> GpuLeases:
    """The GPUs the warm runners of this process share out, one per runner (one run each)."""
    return GpuLeases.of_this_process()
