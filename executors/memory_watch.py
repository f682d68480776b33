"""The memory limit a workflow may declare (``memoryMb``): the run's whole process tree, watched."""

from __future__ import annotations

import asyncio

from ptw.executors.process_tree import tree_memory

MB = 2**20


async def over_limit(pid: int, limit_mb: int, every: float = 0.5) -> int | None:
    """Bytes the tree of ``pid`` uses once that is over ``limit_mb``; None when the process ended first.

    Without cgroups a limit is a watch: RLIMIT_AS would count the address space torch reserves (far more
    than it touches) and refuse allocations with errors the training code cannot tell from a bug."""
    while True:
        used = await asyncio.to_thread(tree_memory, pid)
        if used == 0:
            return None
        if used > limit_mb * MB:
            return used
        await asyncio.sleep(every)
