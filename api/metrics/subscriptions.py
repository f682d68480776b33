"""Subscriptions of metrics: ``runMetrics``, resumable with the cursor of the last batch received."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from ptw.api.context import Info
from ptw.api.ids import decode_int_cursor
from ptw.api.metrics.stream import MetricStream
from ptw.api.metrics.types import SEQ_CURSOR, MetricBatch
from ptw.api.run_ids import run_id_of
from ptw.api.shared_events import DirectNext


@strawberry.type
class MetricSubscriptions:
    @strawberry.subscription(
        description="Stored batches after the cursor, then live ones; pass the last cursor to resume."
    )
    async def run_metrics(
        self,
        info: Info,
        run_id: strawberry.ID,
        keys: list[str] | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[MetricBatch, None]:
        services = info.context.services
        run = await run_id_of(info, run_id)
        stream = MetricStream(services.metrics, info.context.actor, run, keys)
        after_seq = decode_int_cursor(after, SEQ_CURSOR) if after else 0
        # A batch another subscriber was already sent with this selection goes straight to the socket.
        direct = DirectNext.for_operation(info.operation, info.variable_values)
        with info.context.telemetry.subscription("runMetrics"):
            async for batch in stream.batches(after_seq):
                event = MetricBatch.from_domain(batch)
                if direct is None or not await direct.sent(event):
                    yield event
