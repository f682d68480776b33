"""PyTorch-workflow: the command line (``ptw``) and the public SDK (``from ptw import RunContext``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["RunContext", "__version__"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from executors.sdk import RunContext


def __getattr__(name: str) -> Any:
    # Lazy, so that `ptw` commands and the API never import torch just by importing this package.
    if name == "RunContext":
        from executors.sdk import RunContext

        return RunContext
    raise AttributeError(name)
