"""The queue-depth signal for the cloud: ``QueueDepth`` and ``RunningRuns`` per ResourceClass, to CloudWatch.

The API publishes it (``PTW_CLOUDWATCH_NAMESPACE`` set, production mode): the API always runs, so the signal
exists while no executor does, and the executors' autoscaling (infra/terraform/modules/executors/scaling.tf)
can leave zero. Every replica publishes the same numbers; the alarms read their Maximum, so that is harmless.
boto3 finds the region and credentials as usual (the task role on ECS); ``AWS_ENDPOINT_URL_CLOUDWATCH``
points it elsewhere (tests, LocalStack).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ptw.domain.ports import JobQueue
from ptw.domain.retry import every

log = logging.getLogger(__name__)

QUEUE_DEPTH = "QueueDepth"  # runs waiting for an executor
RUNNING_RUNS = "RunningRuns"  # runs an executor took and has not finished
DIMENSION = "ResourceClass"
INTERVAL = 60.0  # CloudWatch's standard resolution: one datapoint a minute is what the alarms evaluate


class QueueDepthPublisher:
    def __init__(
        self,
        queue: JobQueue,
        namespace: str,
        client: Any,
        *,
        resource_classes: Sequence[str] = ("cpu", "gpu"),
        interval: float = INTERVAL,
    ) -> None:
        self.queue = queue
        self.namespace = namespace
        self.client = client  # a boto3 CloudWatch client (sync: its calls run in a thread)
        self.resource_classes = tuple(resource_classes)
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_namespace(cls, queue: JobQueue, namespace: str, **options: Any) -> QueueDepthPublisher:
        import boto3  # only where the metric is published: the rest of the product never needs it

        return cls(queue, namespace, boto3.client("cloudwatch"), **options)

    async def publish(self) -> list[dict[str, Any]]:
        """One datapoint of each metric for each resource class (0 included: an empty queue is a signal)."""
        waiting = await self.queue.depth()
        running = await self.queue.in_progress()
        at = datetime.now(UTC)
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": DIMENSION, "Value": rc}],
                "Timestamp": at,
                "Value": float(counts.get(rc, 0)),
                "Unit": "Count",
            }
            for rc in self.resource_classes
            for name, counts in ((QUEUE_DEPTH, waiting), (RUNNING_RUNS, running))
        ]
        await asyncio.to_thread(self.client.put_metric_data, Namespace=self.namespace, MetricData=data)
        return data

    async def start(self) -> None:
        self._task = asyncio.create_task(self._publish_forever(), name="cloudwatch-queue-depth")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _publish_forever(self) -> None:
        await every(self.interval, self.publish, "publish the queue depth to CloudWatch", log, at_once=True)
