"""The RunContext of the run this process executes, for ``ptw.init()`` called by training code inside an
executor: it answers this run rather than creating an external one (one script works both ways)."""

from __future__ import annotations

from typing import Any

_context: Any = None
_summary: dict[str, Any] = {}


def set_context(ctx: Any) -> None:
    global _context
    _context = ctx
    _summary.clear()


def context() -> Any:
    """The current RunContext, or None outside an executor's run."""
    return _context


def tracked_summary() -> dict[str, Any]:
    """What the training code put in ``run.summary`` through ``ptw.init()``: merged into the result."""
    return _summary
