"""Production mode end to end: two `ptw serve --executors 0` replicas and a `ptw worker` on one fresh
PostgreSQL database and Redis prefix. A run started through replica A runs on the worker, and a subscriber
on replica B follows it live."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ptw.client import GraphQLClient, GraphQLError
from tests.e2e.conftest import Production, Server, Worker

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

START = "mutation($input: StartRunInput!) { startRun(input: $input) { id status } }"
RUN = "query($id: ID!) { run(id: $id) { id status error summary metricKeys executor } }"
POOL = "{ executorPool { workers busy queueDepth queueByClass executors { id resourceClasses busy } } }"
PROJECT_RUNS = "subscription($p: ID!) { projectRuns(projectId: $p) { id status } }"
RUN_METRICS = "subscription($id: ID!) { runMetrics(runId: $id) { cursor points { key step value } } }"


@pytest.fixture(scope="module")
def stack(production: Production) -> Iterator[tuple[Server, Server, Worker]]:
    a = production.replica()  # started alone: it creates the built-in workflows of the fresh database
    b = production.replica()
    worker = production.worker()
    yield a, b, worker


async def wait_for_worker(client: GraphQLClient, worker: Worker, within: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert worker.process.poll() is None, f"ptw worker exited:\n{worker.output()}"
        pool = (await client.execute(POOL))["executorPool"]
        if pool["workers"]:
            return dict(pool)
        await asyncio.sleep(0.3)
    raise AssertionError(f"no worker announced itself within {within}s:\n{worker.output()}")


async def test_executor_pool_on_either_replica_shows_the_worker(
    stack: tuple[Server, Server, Worker],
) -> None:
    a, b, worker = stack
    for replica in (a, b):
        pool = await wait_for_worker(replica.client(), worker)
        assert pool["workers"] == 1
        assert pool["executors"][0]["resourceClasses"] == ["cpu"]
        assert pool["queueByClass"] == {"cpu": 0, "gpu": 0}
        async with httpx.AsyncClient(timeout=10) as http:
            ready = await http.get(f"{replica.url}/readyz")
        assert ready.json() == {"status": "ok", "database": True, "redis": True}


async def test_a_workflow_the_worker_cannot_import_is_refused_through_either_replica(
    stack: tuple[Server, Server, Worker],
) -> None:
    a, b, worker = stack
    await wait_for_worker(a.client(), worker)
    register = "mutation($i: RegisterWorkflowInput!) { registerWorkflow(input: $i) { id } }"
    with pytest.raises(GraphQLError) as refused:
        await b.client().execute(
            register, {"i": {"name": "prod-missing", "entrypoint": "nowhere_pkg.x:main"}}
        )
    assert refused.value.code == "BAD_USER_INPUT"
    assert "No module named 'nowhere_pkg'" in str(refused.value)
    found = {"name": "prod-found", "entrypoint": "tests.workflows.sample:raises"}
    assert (await a.client().execute(register, {"i": found}))["registerWorkflow"]["id"]


async def test_a_subscriber_on_replica_b_follows_live_a_run_started_through_replica_a(
    stack: tuple[Server, Server, Worker],
) -> None:
    a, b, worker = stack
    await wait_for_worker(a.client(), worker)
    viewer = await b.client().execute("{ viewer { projects { id name } } }")
    project_id = next(p["id"] for p in viewer["viewer"]["projects"] if p["name"] == "default")
    workflow = await a.client().execute('{ workflow(name: "digits-mlp") { id } }')

    statuses: list[tuple[float, str]] = []
    batches: list[tuple[float, int]] = []
    subscribed = asyncio.Event()
    run_id: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def follow_project() -> None:
        subscription = b.client().subscribe(PROJECT_RUNS, {"p": project_id})
        first = asyncio.ensure_future(subscription.__anext__())
        await asyncio.sleep(1.0)  # the subscription is registered on B before the run starts
        subscribed.set()
        data = await first
        while True:
            if data["projectRuns"]["id"] == await run_id:
                statuses.append((time.monotonic(), data["projectRuns"]["status"]))
                if data["projectRuns"]["status"] in {"SUCCEEDED", "FAILED", "CANCELLED"}:
                    return
            data = await subscription.__anext__()

    async def follow_metrics() -> None:
        async for data in b.client().subscribe(RUN_METRICS, {"id": await run_id}):
            batches.append((time.monotonic(), len(data["runMetrics"]["points"])))

    project_task = asyncio.create_task(follow_project())
    await asyncio.wait_for(subscribed.wait(), 10)
    started = await a.client().execute(
        START, {"input": {"workflowId": workflow["workflow"]["id"], "params": {"epochs": 3}}}
    )
    run_id.set_result(started["startRun"]["id"])
    metrics_task = asyncio.create_task(follow_metrics())
    try:
        await asyncio.wait_for(project_task, 120)
    finally:
        metrics_task.cancel()

    run = (await b.client().execute(RUN, {"id": run_id.result()}))["run"]
    assert run["status"] == "SUCCEEDED", f"{run['error']}\n{worker.output()}"
    assert run["executor"].startswith("worker-")
    assert run["summary"]["val_accuracy"] > 0.5
    seen = [s for _, s in statuses]
    assert "RUNNING" in seen and seen[-1] == "SUCCEEDED", seen
    # Live: B got points while the run was still going, not only a replay once it had ended.
    finished_at = statuses[-1][0]
    assert batches and batches[0][0] < finished_at, (batches[:3], statuses)
    assert sum(n for _, n in batches) > 0


async def test_sigterm_stops_the_worker_cleanly_and_its_run_waits_as_the_next_attempt(
    stack: tuple[Server, Server, Worker],
) -> None:
    a, _, worker = stack
    client = a.client()
    await wait_for_worker(client, worker)
    workflow = await client.execute('{ workflow(name: "tiny-lm") { id } }')
    started = await client.execute(
        START, {"input": {"workflowId": workflow["workflow"]["id"], "params": {"steps": 100000}}}
    )
    run_id = started["startRun"]["id"]
    deadline = time.monotonic() + 60
    while (await client.execute(RUN, {"id": run_id}))["run"]["status"] != "RUNNING":
        assert time.monotonic() < deadline, worker.output()
        await asyncio.sleep(0.2)

    assert worker.stop() == 0, worker.output()  # SIGTERM: stop taking jobs, stop the child, re-queue
    run = (await client.execute("query($id: ID!) { run(id: $id) { status attempt } }", {"id": run_id}))["run"]
    assert run == {"status": "QUEUED", "attempt": 2}
    pool = (await client.execute(POOL))["executorPool"]
    assert (pool["workers"], pool["queueByClass"]) == (0, {"cpu": 1, "gpu": 0})
    cancelled = await client.execute("mutation($id: ID!) { cancelRun(id: $id) { status } }", {"id": run_id})
    assert cancelled["cancelRun"]["status"] == "CANCELLED"
