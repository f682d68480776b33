"""The peak memory a tuning variant needs: the CUDA allocator's peak, or the growth of the peak resident set.

On CUDA, ``torch.cuda.max_memory_allocated`` since the variant began. On the CPU, the growth of the process's
peak resident set (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``) over its resident set when the
variant began; where that reset is not allowed, the growth of ``ru_maxrss``, which is 0 once an earlier
variant peaked higher (tracemalloc would miss torch's allocations, which are not made through Python).
"""

from __future__ import annotations

import resource
from pathlib import Path

import torch


class PeakMemory:
    """The peak memory a variant needs, in MiB (see the module docstring for what is measured where)."""

    _STATUS = Path("/proc/self/status")
    _CLEAR_REFS = Path("/proc/self/clear_refs")

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._start = 0.0
        self._resettable = False
        self.peak_mb = 0.0

    def __enter__(self) -> PeakMemory:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self._device)
            return self
        try:
            self._CLEAR_REFS.write_text("5")  # "5" resets the peak resident set size (Linux 4.0+)
            self._resettable = True
            self._start = self._status_kb("VmRSS")
        except OSError:
            self._start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return self

    def __exit__(self, *exc: object) -> None:
        if self._device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self._device) / 2**20
        elif self._resettable:
            self.peak_mb = max(0.0, self._status_kb("VmHWM") - self._start) / 1024
        else:
            self.peak_mb = max(0.0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self._start) / 1024

    def _status_kb(self, field: str) -> float:
        for line in self._STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return float(line.split()[1])
        raise OSError(f"{field} is not in {self._STATUS}")
