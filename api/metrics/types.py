"""GraphQL types of metrics: points, downsampled series and the batches of the live stream."""

from __future__ import annotations

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
    points: list[MetricPoint]
    cursor: str

    @classmethod
    def from_domain(cls, batch: metrics.MetricBatch) -> MetricBatch:
        return cls(
            run_id=strawberry.ID(encode_id("Run", batch.run_id)),
            points=[MetricPoint.from_domain(p) for p in batch.points()],
            cursor=encode_cursor(SEQ_CURSOR, batch.seq),
        )


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
