"""GraphQL types of metrics: points, downsampled series and the batches of the live stream."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from ptw.api.ids import encode_cursor, encode_id
from ptw.domain import metrics
from ptw.domain.clock import utcnow
from ptw.domain.series import SeriesRead

SEQ_CURSOR = "seq"
STEP_CURSOR = "step"


@strawberry.type
class MetricPoint:
    key: str
    step: int
    value: float
    timestamp: datetime

    @classmethod
    def from_domain(cls, point: metrics.MetricPoint) -> MetricPoint:
        return cls(key=point.key, step=point.step, value=point.value, timestamp=point.timestamp)


@strawberry.type(description="One key of a run; downsampled (keeping extremes) only when total > maxPoints.")
class MetricSeries:
    key: str
    total: int = strawberry.field(description="How many points there are after the cursor.")
    cursor: str | None = strawberry.field(
        description="Pass as `after` to get only points of a higher step next time."
    )
    read: strawberry.Private[SeriesRead]

    @classmethod
    def from_domain(cls, series: SeriesRead, after_step: int | None) -> MetricSeries:
        last_step = series.last_step if series.last_step is not None else after_step
        cursor = encode_cursor(STEP_CURSOR, last_step) if last_step is not None else None
        return cls(key=series.key, total=series.total, cursor=cursor, read=series)

    @strawberry.field
    def points(self) -> list[MetricPoint]:
        return [MetricPoint.from_domain(p) for p in self.read.points]

    @strawberry.field(
        graphql_type=JSON,
        description="The same points as columns, {key: {steps, values, timestamps}} (epoch seconds): "
        "what a chart reads, and much cheaper than `points` for long series.",
    )
    def columns(self) -> Any:
        return {self.key: self.read.columns()}


@strawberry.type(description="Points stored together; `cursor` resumes the stream after this batch.")
class MetricBatch:
    run_id: strawberry.ID
    cursor: str
    model: strawberry.Private[metrics.MetricBatch]
    _points: strawberry.Private[list[MetricPoint] | None] = None
    _columns: strawberry.Private[dict[str, Any] | None] = None
    # One object per batch sent (from_domain), no field depends on who asks: executed once for all.
    __shared_execution__ = True

    @classmethod
    def from_domain(cls, batch: metrics.MetricBatch) -> MetricBatch:
        """The batch's GraphQL object, made once for every subscriber that is sent the same batch (the
        same run, cursor and points): a run followed by many is encoded once, not once per subscriber."""
        global _recent_points
        key = (batch.run_id, batch.seq, tuple((s.key, len(s)) for s in batch.series))
        made = _recent.get(key)
        if made is None:
            made = cls(
                run_id=strawberry.ID(encode_id("Run", batch.run_id)),
                cursor=encode_cursor(SEQ_CURSOR, batch.seq),
                model=batch,
            )
            _recent[key] = made
            _recent_points += len(batch)
            while _recent_points > RECENT_POINTS and len(_recent) > 1:
                _, dropped = _recent.popitem(last=False)
                _recent_points -= len(dropped.model)
        return made

    @strawberry.field(description="The batch's points one by one (see `columns` for the compact form).")
    def points(self) -> list[MetricPoint]:
        if self._points is None:
            self._points = [MetricPoint.from_domain(p) for p in self.model.points()]
        return self._points

    @strawberry.field(
        description="The batch as columns, per key: `{key: {steps: [Int], values: [Float], timestamps: "
        "[Float]}}`, timestamps in seconds since the epoch (UTC). What charts read: a fraction of the size "
        "and the work of `points`."
    )
    def columns(self) -> JSON:
        if self._columns is None:
            self._columns = {
                s.key: {
                    "steps": s.steps.tolist(),
                    "values": s.values.tolist(),
                    "timestamps": s.timestamps.tolist(),
                }
                for s in self.model.series
            }
        return self._columns


# Batches sent lately, by (run, cursor, points per key): subscribers of one run are sent the same ones.
# Bounded by their points, a few MB once encoded both ways.
RECENT_POINTS = 50_000
_recent: OrderedDict[tuple[Any, ...], MetricBatch] = OrderedDict()
_recent_points = 0


@strawberry.input
class MetricInput:
    key: str
    step: int
    value: float
    timestamp: datetime | None = strawberry.field(default=None, description="Default: when received.")

    def to_domain(self) -> metrics.MetricPoint:
        return metrics.MetricPoint(
            key=self.key, step=self.step, value=self.value, timestamp=self.timestamp or utcnow()
        )
