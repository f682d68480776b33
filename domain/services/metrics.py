"""Recording metric points and reading them back: series, latest values and replay for subscribers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.errors import NotFound
from domain.events import MetricsRecorded, run_topic
from domain.metrics import MetricBatch, MetricPoint, check_points, downsample
from domain.ports import EventBus, UnitOfWorkFactory
from domain.runs import Run
from domain.tenancy import Actor, Role


@dataclass(frozen=True)
class Series:
    key: str
    total: int
    points: list[MetricPoint]
    last_step: int | None


@dataclass
class MetricService:
    uow: UnitOfWorkFactory
    bus: EventBus

    async def record(self, run_id: str, points: Sequence[MetricPoint]) -> MetricBatch | None:
        """Store points of a run as one batch, then publish it. Executors call this; so does logMetrics."""
        checked = check_points(points)
        if not checked:
            return None
        async with self.uow() as uow:
            run = await uow.runs.get(run_id)
            if run is None:
                raise NotFound.of("Run", run_id)
            known = set(run.metric_keys)
            new_keys = sorted({p.key for p in checked} - known)
            seq = await uow.runs.next_metric_seq(run_id, new_keys)
            batch = MetricBatch(run_id=run_id, seq=seq, points=tuple(checked))
            await uow.metrics.add_batch(batch)
            await uow.commit()
        await self.bus.publish([run_topic(run_id)], MetricsRecorded(run.project_id, batch))
        return batch

    async def log_metrics(self, actor: Actor, run_id: str, points: Sequence[MetricPoint]) -> int:
        """Points logged from outside our executors (training code of the user's own)."""
        await self._visible(actor, run_id, Role.MEMBER)
        batch = await self.record(run_id, points)
        return len(batch.points) if batch else 0

    async def series(
        self, actor: Actor, run_id: str, key: str, max_points: int = 500, after_step: int | None = None
    ) -> Series:
        await self._visible(actor, run_id)
        return await self.series_of(run_id, key, max_points, after_step)

    async def series_of(
        self, run_id: str, key: str, max_points: int = 500, after_step: int | None = None
    ) -> Series:
        """Every point after ``after_step`` when they fit in ``max_points``, else a downsampled series."""
        async with self.uow() as uow:
            points = await uow.metrics.series(run_id, key, after_step)
        kept = downsample(points, max_points)
        return Series(key=key, total=len(points), points=kept, last_step=points[-1].step if points else None)

    async def latest(self, run_ids: Sequence[str]) -> dict[str, list[MetricPoint]]:
        async with self.uow() as uow:
            return await uow.metrics.latest(run_ids)

    async def replay(
        self, actor: Actor, run_id: str, after_seq: int, keys: Sequence[str] | None = None
    ) -> list[MetricBatch]:
        await self._visible(actor, run_id)
        async with self.uow() as uow:
            return await uow.metrics.batches_after(run_id, after_seq, keys)

    async def _visible(self, actor: Actor, run_id: str, role: Role = Role.VIEWER) -> Run:
        async with self.uow() as uow:
            run = await uow.runs.get(run_id)
        if run is None or not actor.can_see(run.project_id):
            raise NotFound.of("Run", run_id)
        actor.require(run.project_id, role, "Run", run_id)
        return run
