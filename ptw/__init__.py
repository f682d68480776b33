"""PyTorch-workflow: the command line (``ptw``), the public SDK (``from ptw import RunContext``) and the
tracking client (``ptw.init``, ``ptw.finish``: see ``ptw.tracking``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__all__ = ["RunContext", "__version__", "finish", "init"]
__version__ = "0.1.0"

# Installed, setup.py maps the layers (api/, domain/, executors/, infra/) under ptw. A source checkout keeps
# them beside this folder: look there too, so that its tests, `python -m ptw...` run from it and every git
# worktree run their own code rather than whatever an editable install last pointed at.
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "setup.py").is_file() and (_checkout / "domain" / "runs.py").is_file():
    __path__.append(str(_checkout))

if TYPE_CHECKING:
    from ptw.executors.sdk import RunContext
    from ptw.tracking import finish, init


def __getattr__(name: str) -> Any:
    # Lazy, so that `ptw` commands and the API never import torch just by importing this package.
    if name == "RunContext":
        from ptw.executors.sdk import RunContext

        return RunContext
    if name in ("init", "finish"):
        import ptw.tracking

        return getattr(ptw.tracking, name)
    raise AttributeError(name)
