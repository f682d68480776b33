"""Workflows: registered PyTorch training code, addressed by an entrypoint ``package.module:function``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ptw.domain.errors import BadInput

_ENTRYPOINT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
# The built-in workflow of external runs (see domain/services/tracking.py): never started on an executor.
EXTERNAL_WORKFLOW = "external"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_POOL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
MAX_PROCESSES_PER_NODE = 64
MAX_NODES = 64
MIN_MEMORY_MB = 64


@dataclass
class Resources:
    """What one run of a workflow needs: ``gpus`` and ``processes_per_node`` per node (one process per
    GPU unless told otherwise; CPU runs one process), on ``nodes`` executors at once; a memory limit for
    all the processes of the run on one node; the pool of executors that may take it (None: the shared
    pool)."""

    gpus: int = 0
    timeout_seconds: int | None = None
    processes_per_node: int | None = None
    nodes: int = 1
    memory_mb: int | None = None
    pool: str | None = None

    @property
    def resource_class(self) -> str:
        """The queue a run of this workflow waits in: GPU runs only go to GPU executors, and a pool's
        runs only to the pool's executors (``research/gpu``)."""
        kind = "gpu" if self.gpus > 0 else "cpu"
        return f"{self.pool}/{kind}" if self.pool else kind

    @property
    def processes(self) -> int:
        """Processes of the run on each node."""
        return self.processes_per_node or max(1, self.gpus)

    @property
    def distributed(self) -> bool:
        """Run through torch's elastic launcher: several processes or nodes, or ``processes_per_node``
        declared (even 1: a process group of one, e.g. NCCL on a single GPU)."""
        return self.processes_per_node is not None or self.processes > 1 or self.nodes > 1


@dataclass
class Workflow:
    """``project_id`` is None for the built-in workflows every project sees."""

    id: str
    name: str
    entrypoint: str
    project_id: str | None
    params_schema: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    created_at: datetime | None = None

    @property
    def builtin(self) -> bool:
        return self.project_id is None

    @property
    def tracked_only(self) -> bool:
        """Runs of it are created by the tracking client, never queued for an executor."""
        return self.builtin and self.name == EXTERNAL_WORKFLOW


def check_entrypoint(entrypoint: str) -> str:
    if not _ENTRYPOINT.match(entrypoint):
        raise BadInput(
            f"entrypoint {entrypoint!r} is not of the form 'package.module:function'", field="entrypoint"
        )
    return entrypoint


def check_workflow_name(name: str) -> str:
    if not _NAME.match(name):
        raise BadInput(
            "a workflow name is 1-100 characters of lower-case letters, digits, '.', '_' or '-'",
            field="name",
        )
    return name


def check_resources(
    gpus: int | None,
    timeout_seconds: int | None,
    processes_per_node: int | None = None,
    nodes: int | None = None,
    memory_mb: int | None = None,
    pool: str | None = None,
) -> Resources:
    if gpus is not None and not 0 <= gpus <= 16:
        raise BadInput("gpus must be between 0 and 16", field="gpus")
    if timeout_seconds is not None and timeout_seconds <= 0:
        raise BadInput("timeoutSeconds must be positive", field="timeoutSeconds")
    if processes_per_node is not None and not 1 <= processes_per_node <= MAX_PROCESSES_PER_NODE:
        raise BadInput(
            f"processesPerNode must be between 1 and {MAX_PROCESSES_PER_NODE}", field="processesPerNode"
        )
    if nodes is not None and not 1 <= nodes <= MAX_NODES:
        raise BadInput(f"nodes must be between 1 and {MAX_NODES}", field="nodes")
    if memory_mb is not None and memory_mb < MIN_MEMORY_MB:
        raise BadInput(f"memoryMb must be at least {MIN_MEMORY_MB}", field="memoryMb")
    if pool is not None and not _POOL.match(pool):
        raise BadInput(
            "a pool name is 1-50 characters of lower-case letters, digits, '_' or '-'", field="pool"
        )
    return Resources(
        gpus=gpus or 0,
        timeout_seconds=timeout_seconds,
        processes_per_node=processes_per_node,
        nodes=nodes or 1,
        memory_mb=memory_mb,
        pool=pool,
    )
