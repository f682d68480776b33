"""The variants a tuning tries: their names, their configurations, which ones apply to a device and batch.

A variant is one configuration of the training step: a compile mode, an autocast dtype, a memory layout,
TF32, a batch size and a CPU thread count. Every variant but ``combined`` changes one of them from the
baseline ``eager-fp32``; ``combined`` stacks the single changes that were faster within tolerance.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

BASELINE = "eager-fp32"
COMBINED = "combined"
# The kinds a caller may list in ``variants``; "batch-size" and "threads" expand to one variant per value.
KINDS = (
    BASELINE,
    "compile",
    "compile-max-autotune",
    "amp-bf16",
    "amp-fp16",
    "channels-last",
    "tf32",
    "batch-size",
    "threads",
    COMBINED,
)
# A variant must beat the baseline by this much to join ``combined``: smaller gains are within the noise.
COMBINE_MIN_SPEEDUP = 1.05


@dataclass(frozen=True)
class StepConfig:
    """How the training step runs. ``threads`` is None on a GPU, where the CPU thread count is not tuned."""

    batch_size: int
    threads: int | None
    compile: str | None = None  # a torch.compile mode: "default" or "max-autotune"
    amp: str | None = None  # an autocast dtype: "bf16" or "fp16" (fp16 with a GradScaler)
    channels_last: bool = False
    tf32: bool = False

    @property
    def low_precision(self) -> bool:
        """Autocast and TF32 round to fewer mantissa bits than fp32: they get the looser tolerance."""
        return self.amp is not None or self.tf32

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Variant:
    name: str
    config: StepConfig


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


def cuda_features() -> tuple[bool, bool]:
    """(bf16 autocast, TF32) on the current CUDA device. Imports torch."""
    import torch

    major, _ = torch.cuda.get_device_capability()
    return torch.cuda.is_bf16_supported(), major >= 8  # TF32 arrived with Ampere (sm_80)


def plan(
    baseline: StepConfig,
    *,
    device_type: str,
    input_dims: int,
    requested: Sequence[str] | None,
    batch_sizes: Sequence[int] | None,
    threads: Sequence[int] | None,
    cuda: tuple[bool, bool] = (False, False),
) -> tuple[list[Variant], list[Skipped]]:
    """The single-change variants to measure after the baseline, and the requested ones that do not apply.

    ``requested`` None means every kind that applies, except max-autotune on the CPU (minutes of compiling
    for a small model) and ``combined``, which the tuner adds after seeing the others.
    """
    on_gpu = device_type == "cuda"
    bf16_ok, tf32_ok = cuda if on_gpu else (True, False)
    default = requested is None
    kinds = list(KINDS) if default else list(dict.fromkeys(requested or ()))
    variants: list[Variant] = []
    skipped: list[Skipped] = []

    def add(name: str, applies: bool, why_not: str, **change: Any) -> None:
        if applies:
            variants.append(Variant(name, replace(baseline, **change)))
        elif not default:
            skipped.append(Skipped(name, why_not))

    for kind in kinds:
        if kind in (BASELINE, COMBINED):
            continue
        if kind == "compile":
            add(kind, True, "", compile="default")
        elif kind == "compile-max-autotune":
            add(kind, on_gpu or not default, "", compile="max-autotune")
        elif kind == "amp-bf16":
            add(kind, bf16_ok, "this GPU has no bf16", amp="bf16")
        elif kind == "amp-fp16":
            add(kind, on_gpu, "fp16 autocast is tuned on CUDA only", amp="fp16")
        elif kind == "channels-last":
            add(kind, input_dims == 4, f"the inputs are {input_dims}-D, not images", channels_last=True)
        elif kind == "tf32":
            add(kind, tf32_ok, "TF32 needs a CUDA GPU of compute capability 8.0 or newer", tf32=True)
        elif kind == "batch-size":
            sizes = batch_sizes if batch_sizes is not None else _larger(baseline.batch_size)
            for size in dict.fromkeys(sizes):
                if size != baseline.batch_size:
                    add(f"batch-size-{size}", True, "", batch_size=size)
        elif kind == "threads":
            counts = threads if threads is not None else (1, usable_cpus())
            for count in dict.fromkeys(counts):
                if count != baseline.threads:
                    add(
                        f"threads-{count}", not on_gpu, "CPU threads are tuned on the CPU only", threads=count
                    )
        else:
            raise ValueError(f"unknown variant {kind!r}; known: {', '.join(KINDS)}")
    return variants, skipped


def wants_combined(requested: Sequence[str] | None) -> bool:
    return requested is None or COMBINED in requested


def combine(baseline: StepConfig, winners: Sequence[tuple[Variant, float]]) -> Variant | None:
    """Stack the winning single changes, given as (variant, speedup) pairs that were within tolerance.

    For a setting several variants change (two compile modes, two batch sizes) the fastest one wins.
    None when fewer than two settings would change: that is one of the variants already measured.
    """
    changes: dict[str, tuple[float, Any]] = {}
    base = asdict(baseline)
    for variant, speedup in winners:
        if speedup < COMBINE_MIN_SPEEDUP or variant.name == COMBINED:
            continue
        for key, value in asdict(variant.config).items():
            if value != base[key] and (key not in changes or speedup > changes[key][0]):
                changes[key] = (speedup, value)
    if len(changes) < 2:
        return None
    return Variant(COMBINED, replace(baseline, **{key: value for key, (_, value) in changes.items()}))


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's CPU set), not every CPU of the host."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _larger(batch_size: int) -> list[int]:
    return [size for size in (2 * batch_size, 4 * batch_size) if size <= 4096]
