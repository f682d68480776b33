"""The ObjectiveWatch: a trial's objective as it logs it (or reports it by name), told to the optimizer.

A trial is judged by the metric its search names, never by whatever the training code happens to report:
the supervisor hands every logged batch and every report to the watch, which picks the objective's values
and asks the optimizer (the ``TrialAdvisor``) whether to prune. Reports that name the objective win over
logged points (they may count steps differently, e.g. epochs); reports of other metrics, and reports
that name no metric, are not the objective. Values are told at most every ``interval`` seconds (a metric
logged every step must not cost a transaction a batch) and always before the attempt ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from ptw.domain.metrics import Series
from ptw.domain.runs import RunJob
from ptw.domain.trials import FROM_LOGS, FROM_REPORTS, MAX_LOGGED_KEYS

MAX_KEYS = MAX_LOGGED_KEYS


class TrialAdvisor(Protocol):
    async def observe(self, job: RunJob, values: dict[int, float], source: str) -> bool:
        """Store the objective's values by step; True when the trial should stop now."""
        ...

    async def objective_missing(self, job: RunJob, logged: Sequence[str]) -> None:
        """The attempt ended without any value of its objective; ``logged``: the keys it logged."""
        ...


class ObjectiveWatch:
    def __init__(self, job: RunJob, advisor: TrialAdvisor | None, interval: float = 0.25) -> None:
        self.job = job
        self.objective = job.objective if advisor is not None else None
        self.advisor = advisor
        self.interval = interval
        self.keys: set[str] = set()  # the keys logged, for saying which when the objective is not
        self.seen = False
        self.unnamed_reports = 0
        self._source = FROM_LOGS
        self._pending: dict[int, float] = {}
        self._told_at = 0.0

    @property
    def active(self) -> bool:
        return self.objective is not None

    async def logged(self, series: Iterable[Series]) -> bool:
        """A logged batch; True when the optimizer says prune."""
        if self.objective is None:
            return False
        for s in series:
            if len(self.keys) < MAX_KEYS:
                self.keys.add(s.key)
            if s.key == self.objective and self._source == FROM_LOGS:
                self._pending.update(zip(s.steps.tolist(), s.values.tolist(), strict=True))
        return await self._tell(force=False)

    async def report(self, metric: str | None, value: float, step: int) -> bool:
        """A ``ctx.report``; True when the optimizer says prune."""
        if self.objective is None:
            return False
        if metric is None:
            self.unnamed_reports += 1
            return False
        if metric != self.objective:
            return False
        if self._source == FROM_LOGS:
            self._source, self._pending = FROM_REPORTS, {}
        self._pending[step] = value
        return await self._tell(force=True)  # reports are few (an epoch's end): each one may prune

    async def close(self, final: bool) -> None:
        """Tell what is left; with ``final`` (the run ends with this attempt), say if it never came."""
        if self.advisor is None or self.objective is None:
            return
        await self._tell(force=True)
        if final and not self.seen:
            await self.advisor.objective_missing(self.job, sorted(self.keys))

    async def _tell(self, force: bool) -> bool:
        if not self._pending or self.advisor is None:
            return False
        now = time.monotonic()
        if not force and now - self._told_at < self.interval:
            return False
        values, self._pending, self._told_at = self._pending, {}, now
        self.seen = True
        return await self.advisor.observe(self.job, values, self._source)
