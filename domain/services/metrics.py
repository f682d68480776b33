"""Recording metric points and reading them back: series, latest values, replay and live following."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from ptw.domain.errors import BadInput, Conflict, NotFound
from ptw.domain.events import MetricsRecorded, run_topic
from ptw.domain.metrics import MetricBatch, MetricPoint, Series, checked, series_of_points
from ptw.domain.ports import EventBus, MetricLog, UnitOfWorkFactory
from ptw.domain.runs import Run
from ptw.domain.series import MAX_WHOLE_SERIES, SeriesRead, check_max_points
from ptw.domain.services.metric_follow import Delivery, MetricFollow
from ptw.domain.tenancy import Actor, Role


@dataclass
class MetricService:
    """``log`` set (production): batches go to the metric log, and from there to storage by ``ingest``;
    unset (embedded): they are stored at once and published on the bus."""

    uow: UnitOfWorkFactory
    bus: EventBus
    log: MetricLog | None = None

    async def record(self, run_id: str, series: Sequence[Series]) -> MetricBatch | None:
        """Store series of a run as one batch, then publish it. Executors call this; so does logMetrics.
        The batch stays columns all the way: validated vectorised, never expanded into points."""
        valid = checked(series)
        if not valid:
            return None
        if self.log is not None:
            # The hot path of production: one append, no database; the ingester stores it and the run's
            # followers read it from the log (so it is not published on the bus as well).
            seq = await self.log.append(run_id, valid)
            return MetricBatch(run_id=run_id, seq=seq, series=valid)
        async with self.uow() as uow:
            run = await uow.runs.get(run_id)
            if run is None:
                raise NotFound.of("Run", run_id)
            new_keys = sorted({s.key for s in valid}.difference(run.metric_keys))
            seq = await uow.runs.next_metric_seq(run_id, new_keys)
            batch = MetricBatch(run_id=run_id, seq=seq, series=valid)
            await uow.metrics.add_batch(batch)
            await uow.commit()
        await self.bus.publish([run_topic(run_id)], MetricsRecorded(run.project_id, batch))
        return batch

    async def ingest(self, batches: Sequence[MetricBatch]) -> set[str]:
        """Store batches read from the metric log, all in one transaction: their points with their seq
        (the higher seq wins a repeated (run, key, step)), and each run's new metric keys.

        Batches of runs that do not exist (any more) are dropped rather than block the others; returns
        the ids of those runs."""
        if not batches:
            return set()
        run_ids = sorted({b.run_id for b in batches})
        async with self.uow() as uow:
            runs = {r.id: r for r in await uow.runs.get_many(run_ids)}
            stored = [b for b in batches if b.run_id in runs]
            keys: dict[str, set[str]] = {}
            for b in stored:
                keys.setdefault(b.run_id, set()).update(b.keys)
            for run_id in sorted(keys):  # one order of row locks for every ingester: no deadlock
                new_keys = keys[run_id].difference(runs[run_id].metric_keys)
                if new_keys:
                    await uow.runs.add_metric_keys(run_id, sorted(new_keys))
            await uow.metrics.add_batches(stored)
            await uow.commit()
        return set(run_ids) - runs.keys()

    async def finished(self, run_ids: Sequence[str]) -> set[str]:
        """Those of the runs that will log nothing more: finished, or gone."""
        async with self.uow() as uow:
            runs = {r.id: r for r in await uow.runs.get_many(run_ids)}
        return {i for i in run_ids if i not in runs or runs[i].status.terminal}

    async def follow(
        self, actor: Actor, run_id: str, after_seq: int = 0, keys: Sequence[str] | None = None
    ) -> AsyncIterator[Delivery]:
        """Stored batches after ``after_seq``, then live ones, each once, with points filtered by ``keys``;
        ends once the run is finished and all of it was delivered. See ``metric_follow``."""
        await self._visible(actor, run_id)  # NOT_FOUND before subscribing to anything

        async def stored_after(
            after: int, wanted: Sequence[str] | None, before: int | None
        ) -> list[MetricBatch]:
            return await self.replay(actor, run_id, after, wanted, before)

        follower = MetricFollow(self.uow, self.bus, self.log, run_id, keys, stored_after)
        async for delivery in follower.batches(after_seq):
            yield delivery

    async def log_metrics(self, actor: Actor, run_id: str, points: Sequence[MetricPoint]) -> int:
        """Points logged from outside our executors (training code of the user's own), into a run that has
        not ended."""
        run = await self._visible(actor, run_id, Role.MEMBER)
        if run.status.terminal:
            raise Conflict(
                f"run {run_id} already ended {run.status.value}: it takes no more metrics",
                status=run.status.value,
            )
        batch = await self.record(run_id, series_of_points(points))
        return len(batch) if batch else 0

    async def series(
        self, actor: Actor, run_id: str, key: str, max_points: int | None = 500, after_step: int | None = None
    ) -> SeriesRead:
        await self._visible(actor, run_id)
        return await self.series_of(run_id, key, max_points, after_step)

    async def series_of(
        self, run_id: str, key: str, max_points: int | None = 500, after_step: int | None = None
    ) -> SeriesRead:
        """Every point after ``after_step`` when they fit in ``max_points`` (or it is None: the whole
        series), else a downsampled series that keeps the extremes."""
        check_max_points(max_points)
        async with self.uow() as uow:
            if (
                max_points is None
                and (total := await uow.metrics.count(run_id, key, after_step)) > MAX_WHOLE_SERIES
            ):
                raise BadInput(
                    f"{key} has {total} points after the cursor, more than the {MAX_WHOLE_SERIES} a read "
                    "without maxPoints returns: pass maxPoints (downsampled) or a later cursor",
                    field="maxPoints",
                )
            return await uow.metrics.read(run_id, key, max_points, after_step)

    async def latest(self, run_ids: Sequence[str]) -> dict[str, list[MetricPoint]]:
        async with self.uow() as uow:
            return await uow.metrics.latest(run_ids)

    async def replay(
        self,
        actor: Actor,
        run_id: str,
        after_seq: int,
        keys: Sequence[str] | None = None,
        before_seq: int | None = None,
    ) -> list[MetricBatch]:
        """Stored batches of a seq above ``after_seq`` (and below ``before_seq``), in seq order."""
        await self._visible(actor, run_id)
        async with self.uow() as uow:
            return await uow.metrics.batches_after(run_id, after_seq, keys, before_seq)

    async def _visible(self, actor: Actor, run_id: str, role: Role = Role.VIEWER) -> Run:
        async with self.uow() as uow:
            run = await uow.runs.get(run_id)
        if run is None or not actor.can_see(run.project_id):
            raise NotFound.of("Run", run_id)
        actor.require(run.project_id, role, "Run", run_id)
        return run
