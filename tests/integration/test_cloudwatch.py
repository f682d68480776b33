"""The queue-depth signal in CloudWatch: published from the real Redis queue to moto's CloudWatch server,
then read back the way the executors' alarms read it (Maximum per minute, dimension ResourceClass)."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from arq.constants import in_progress_key_prefix
from moto.server import ThreadedMotoServer
from redis.asyncio import Redis

from ptw.domain.runs import RunJob
from ptw.infra import redis_keys
from ptw.infra.cloudwatch import QueueDepthPublisher
from ptw.infra.queue.arq_queue import ArqJobQueue
from tests.fixtures.databases import fresh_postgres_url
from tests.fixtures.production import REDIS_URL, drop_keys

pytestmark = pytest.mark.redis

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "PTW-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto's CloudWatch on a free port; boto3 pointed at it by the environment, as the API would be."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto's backends live in this process, shared by every server it starts: begin empty.
    httpx.post(f"http://127.0.0.1:{port}/moto-api/reset", timeout=10).raise_for_status()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_CLOUDWATCH": f"http://127.0.0.1:{port}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        yield env
    finally:
        server.stop()


@pytest.fixture
async def queue() -> AsyncIterator[ArqJobQueue]:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"ptw-test-{secrets.token_hex(6)}"
    try:
        yield ArqJobQueue(redis, prefix)
    finally:
        await drop_keys(redis, prefix)
        await redis.aclose()


async def enqueue(queue: ArqJobQueue, resource_class: str, count: int) -> list[str]:
    run_ids = [f"run-{secrets.token_hex(4)}" for _ in range(count)]
    for run_id in run_ids:
        await queue.enqueue(RunJob(run_id, "project", 1, "pkg:train", {}, resource_class, None))
    return run_ids


def serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``ptw serve --executors 0``: the API alone, as on ECS."""
    command = [sys.executable, "-m", "ptw.cli", "serve", "--port", str(free_port()), "--executors", "0"]
    with open(log, "wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def maximum(name: str, resource_class: str) -> float | None:
    """The latest minute's Maximum of one metric, as the scaling alarms evaluate it."""
    now = datetime.now(UTC)
    points = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=name,
        Dimensions=[{"Name": "ResourceClass", "Value": resource_class}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return max((p["Maximum"] for p in points), default=None)


async def test_waiting_and_running_runs_per_class_reach_cloudwatch(
    cloudwatch: dict[str, str], queue: ArqJobQueue
) -> None:
    gpu_runs = await enqueue(queue, "gpu", 3)
    await enqueue(queue, "cpu", 1)
    # A worker took one GPU run: arq marks its job in progress.
    job_id = redis_keys.run_job_id(queue.prefix, gpu_runs[0], 1)
    await queue.arq.set(in_progress_key_prefix + job_id, b"1", px=60_000)

    publisher = QueueDepthPublisher.for_namespace(queue, NAMESPACE)
    await publisher.publish()

    metrics = boto3.client("cloudwatch").list_metrics(Namespace=NAMESPACE)["Metrics"]
    assert sorted((m["MetricName"], m["Dimensions"][0]["Value"]) for m in metrics) == [
        ("QueueDepth", "cpu"),
        ("QueueDepth", "gpu"),
        ("RunningRuns", "cpu"),
        ("RunningRuns", "gpu"),
    ]
    assert maximum("QueueDepth", "gpu") == 2
    assert maximum("RunningRuns", "gpu") == 1
    assert maximum("QueueDepth", "cpu") == 1
    assert maximum("RunningRuns", "cpu") == 0


async def test_it_publishes_every_interval_and_outlives_a_cloudwatch_outage(
    cloudwatch: dict[str, str], queue: ArqJobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = QueueDepthPublisher.for_namespace(queue, NAMESPACE, interval=0.2)
    real_put = publisher.client.put_metric_data
    calls: list[int] = []

    def put(**request: Any) -> Any:
        calls.append(len(request["MetricData"]))
        if len(calls) == 1:
            raise ConnectionError("CloudWatch is away")
        return real_put(**request)

    monkeypatch.setattr(publisher.client, "put_metric_data", put)
    await publisher.start()
    try:
        deadline = time.monotonic() + 10
        while maximum("QueueDepth", "gpu") is None:
            assert time.monotonic() < deadline, calls
            await asyncio.sleep(0.1)
    finally:
        await publisher.stop()
    assert len(calls) >= 2 and set(calls) == {4}
    count = len(calls)
    await asyncio.sleep(0.5)
    assert len(calls) == count  # stopped


@pytest.mark.postgres
async def test_the_production_api_publishes_while_no_worker_exists(
    cloudwatch: dict[str, str], tmp_path: Path
) -> None:
    prefix = f"ptw-test-{secrets.token_hex(6)}"
    redis = Redis.from_url(REDIS_URL)
    await enqueue(ArqJobQueue(redis, prefix), "gpu", 2)
    async with fresh_postgres_url() as url:
        env = {
            **os.environ,
            **cloudwatch,
            "PTW_DATA_DIR": str(tmp_path),
            "PTW_DATABASE_URL": url,
            "PTW_REDIS_URL": REDIS_URL,
            "PTW_REDIS_PREFIX": prefix,
            "PTW_CLOUDWATCH_NAMESPACE": NAMESPACE,
            "PYTHONPATH": str(REPO),
        }
        command = [sys.executable, "-m", "ptw.cli", "db", "upgrade"]
        await asyncio.to_thread(
            subprocess.run, command, env=env, check=True, capture_output=True, timeout=120
        )
        log = tmp_path / "serve.log"
        server = serve(env, log)
        try:
            deadline = time.monotonic() + 60
            while maximum("QueueDepth", "gpu") != 2:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.2)
        finally:
            server.terminate()
            server.wait(30)
            await drop_keys(redis, prefix)
            await redis.aclose()
