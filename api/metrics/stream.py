"""The live metric stream of a run: stored batches after a cursor, then live ones; no gap, no duplicate.

The bus is subscribed to *before* storage is read, so a batch committed while replaying is either in
the replay or buffered in the subscription; batches are deduplicated by their per-run ``seq``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from domain.events import MetricsRecorded, RunChanged, run_topic
from domain.metrics import MetricBatch, MetricPoint
from domain.ports import EventBus
from domain.services import MetricService, RunService
from domain.tenancy import Actor

Delivery = tuple[MetricBatch, list[MetricPoint]]


class MetricStream:
    def __init__(
        self,
        runs: RunService,
        metrics: MetricService,
        bus: EventBus,
        actor: Actor,
        run_id: str,
        keys: Sequence[str] | None,
    ) -> None:
        self.runs, self.metrics, self.bus, self.actor = runs, metrics, bus, actor
        self.run_id = run_id
        self.keys = frozenset(keys) if keys else None
        self.last_seq = 0

    async def batches(self, after_seq: int = 0) -> AsyncIterator[Delivery]:
        """Batches (with their points filtered by ``keys``) of a higher seq than the last one yielded.

        Ends after the replay when the run is already finished, or after a final replay when a live
        event shows it finished; otherwise runs until the client stops it."""
        await self.runs.get_run(self.actor, self.run_id)  # NOT_FOUND before subscribing to anything
        self.last_seq = after_seq
        async with self.bus.subscribe([run_topic(self.run_id)]) as live:
            # Read after subscribing: a run finishing from now on is seen on the bus.
            run = await self.runs.get_run(self.actor, self.run_id)
            async for delivery in self._replay():
                yield delivery
            if run.status.terminal:
                return
            async for event in live:
                if isinstance(event, MetricsRecorded):
                    async for delivery in self._live(event.batch):
                        yield delivery
                elif isinstance(event, RunChanged) and event.run.status.terminal:
                    # Batches stored before the run finished may still be on their way: drain storage.
                    async for delivery in self._replay():
                        yield delivery
                    return

    async def _live(self, batch: MetricBatch) -> AsyncIterator[Delivery]:
        if batch.seq <= self.last_seq:
            return
        if batch.seq > self.last_seq + 1:
            # Publications of one run may overtake each other; storage has whatever was skipped.
            async for delivery in self._replay():
                yield delivery
            if batch.seq <= self.last_seq:
                return
        fresh = self._advance(batch)
        if fresh is not None:
            yield fresh

    async def _replay(self) -> AsyncIterator[Delivery]:
        stored = await self.metrics.replay(
            self.actor, self.run_id, self.last_seq, sorted(self.keys or ()) or None
        )
        for batch in stored:
            delivery = self._advance(batch)
            if delivery is not None:
                yield delivery

    def _advance(self, batch: MetricBatch) -> Delivery | None:
        """Move the cursor past ``batch``; None when no point of it is wanted (the cursor still moves)."""
        if batch.seq <= self.last_seq:
            return None
        self.last_seq = batch.seq
        points = [p for p in batch.points if self.keys is None or p.key in self.keys]
        return (batch, points) if points else None
