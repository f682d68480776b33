"""Per-project quotas: how many runs a project may have waiting and how many optimizations unfinished, so
one tenant's backlog cannot fill the queue that every tenant shares (fair ordering, in the queues, keeps
it from taking every executor), and how many runs it may have in executors' hands at once. The operator
sets a project's own (``ptw projects quota``); unset, the deployment's defaults (``PTW_MAX_QUEUED_RUNS``,
``PTW_MAX_OPTIMIZATIONS``, ``PTW_MAX_RUNNING_RUNS``: unlimited when unset) apply."""

from __future__ import annotations

from dataclasses import dataclass

from ptw.domain.errors import DomainError


class QuotaExceeded(DomainError):
    code = "QUOTA_EXCEEDED"


@dataclass(frozen=True)
class ProjectQuota:
    """A project's own limits; None: the deployment's default."""

    project_id: str
    max_queued_runs: int | None = None
    max_optimizations: int | None = None
    max_running_runs: int | None = None


@dataclass(frozen=True)
class Quotas:
    """The deployment's defaults, and the check of one project against its limits."""

    max_queued_runs: int = 500
    max_optimizations: int = 20
    max_running_runs: int | None = None  # None: unlimited

    def running_runs(self, own: ProjectQuota | None) -> int | None:
        """How many runs the project may have started and not finished; None: no limit."""
        return own.max_running_runs if own and own.max_running_runs is not None else self.max_running_runs

    def queued_runs(self, own: ProjectQuota | None) -> int:
        return own.max_queued_runs if own and own.max_queued_runs is not None else self.max_queued_runs

    def optimizations(self, own: ProjectQuota | None) -> int:
        return own.max_optimizations if own and own.max_optimizations is not None else self.max_optimizations

    def check(self, what: str, count: int, limit: int) -> None:
        """Refuse one more of ``what`` when the project already has ``limit`` of them."""
        if count >= limit:
            raise QuotaExceeded(
                f"this project already has {count} {what}, its quota: wait for some to finish", limit=limit
            )
