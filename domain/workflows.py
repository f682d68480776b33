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


@dataclass
class Resources:
    gpus: int = 0
    timeout_seconds: int | None = None

    @property
    def resource_class(self) -> str:
        """The queue a run of this workflow waits in: GPU runs only go to GPU executors."""
        return "gpu" if self.gpus > 0 else "cpu"


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


def check_resources(gpus: int | None, timeout_seconds: int | None) -> Resources:
    if gpus is not None and not 0 <= gpus <= 16:
        raise BadInput("gpus must be between 0 and 16", field="gpus")
    if timeout_seconds is not None and timeout_seconds <= 0:
        raise BadInput("timeoutSeconds must be positive", field="timeoutSeconds")
    return Resources(gpus=gpus or 0, timeout_seconds=timeout_seconds)
