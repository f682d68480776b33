"""The live metric stream of a run for ``runMetrics``: the domain's replay-then-live follower.

No gap and no duplicate, in either mode, is ``MetricService.follow``'s (``domain/services/metric_follow``);
this only binds it to a subscription's actor, run and keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from ptw.domain.services import MetricService
from ptw.domain.services.metric_follow import Delivery
from ptw.domain.tenancy import Actor


class MetricStream:
    def __init__(self, metrics: MetricService, actor: Actor, run_id: str, keys: Sequence[str] | None) -> None:
        self.metrics, self.actor, self.run_id, self.keys = metrics, actor, run_id, keys

    def batches(self, after_seq: int = 0) -> AsyncIterator[Delivery]:
        """Batches (only the series of ``keys``) after ``after_seq``; ends once the run is finished."""
        return self.metrics.follow(self.actor, self.run_id, after_seq, self.keys)
