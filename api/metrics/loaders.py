"""Batch loading of each run's latest metric values: one query for a whole page of runs."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from ptw.domain.metrics import MetricPoint
from ptw.domain.services import MetricService


def latest_metrics_loader(service: MetricService, *, cache: bool) -> DataLoader[str, list[MetricPoint]]:
    # Only runs the caller already resolved (and so may see) are asked for: no actor check needed here.
    async def load(run_ids: Sequence[str]) -> list[list[MetricPoint]]:
        latest = await service.latest(run_ids)
        return [latest.get(run_id, []) for run_id in run_ids]

    return DataLoader(load_fn=load, cache=cache)
