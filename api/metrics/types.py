"""GraphQL types of metrics: points, downsampled series and the batches of the live stream."""

from __future__ import annotations

from datetime import datetime

import strawberry

from ptw.api.ids import encode_cursor, encode_id
from ptw.domain import metrics
from ptw.domain.clock import utcnow

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
    points: list[MetricPoint]
    cursor: str | None = strawberry.field(
        description="Pass as `after` to get only points of a higher step next time."
    )


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
