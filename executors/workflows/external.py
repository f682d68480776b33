"""The entrypoint of the ``external`` built-in: its runs live in the user's process, never on an executor."""

from __future__ import annotations

from typing import Any


def tracked_elsewhere(ctx: Any) -> None:
    raise RuntimeError(
        "runs of the 'external' workflow are created by ptw.init() in the training script's own process; "
        "an executor never runs them"
    )
