"""A run named by its global id or by the short id the web UI and the CLI print."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptw.api.ids import decode_id
from ptw.domain.run_labels import is_short_id

if TYPE_CHECKING:
    from ptw.api.context import Info


async def run_id_of(info: Info, ref: str) -> str:
    """The run's uuid; a short id is looked up among the caller's projects (NOT_FOUND, or BAD_USER_INPUT
    when it names more than one run)."""
    if is_short_id(ref):
        return await info.context.services.runs.resolve_id(info.context.actor, ref)
    return decode_id(ref, "Run")
