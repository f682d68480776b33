"""The embedded product as a newcomer meets it: `ptw serve`, real executors, HTTP and graphql-transport-ws."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from ptw.client import GraphQLClient, GraphQLError
from tests.e2e.conftest import REPO, Server

ROOT_FIELDS = {
    "Query": {
        "node",
        "viewer",
        "workflows",
        "workflow",
        "runs",
        "run",
        "optimizations",
        "optimization",
        "executorPool",
    },
    "Mutation": {
        "createProject",
        "createApiKey",
        "revokeApiKey",
        "registerWorkflow",
        "startRun",
        "cancelRun",
        "logMetrics",
        "startOptimization",
        "cancelOptimization",
    },
    "Subscription": {"runMetrics", "runEvents", "projectRuns", "optimizationProgress"},
}
START = "mutation($input: StartRunInput!) { startRun(input: $input) { id status } }"
RUN = "query($id: ID!) { run(id: $id) { id status error summary metricKeys attempt device } }"
SERIES = """query($id: ID!, $key: String!, $max: Int!) {
  run(id: $id) { metrics(key: $key, maxPoints: $max) { key total cursor points { key step value } } }
}"""
REPLAY = "subscription($id: ID!) { runMetrics(runId: $id) { cursor points { key step value } } }"


async def workflow_id(client: GraphQLClient, name: str) -> str:
    data = await client.execute("query($n: String!) { workflow(name: $n) { id name builtin } }", {"n": name})
    assert data["workflow"]["name"] == name
    return str(data["workflow"]["id"])


async def start(client: GraphQLClient, name: str, params: dict[str, Any]) -> str:
    wid = await workflow_id(client, name)
    data = await client.execute(START, {"input": {"workflowId": wid, "params": params}})
    return str(data["startRun"]["id"])


async def wait_for(
    client: GraphQLClient, run_id: str, statuses: set[str], within: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        run = (await client.execute(RUN, {"id": run_id}))["run"]
        if run["status"] in statuses:
            return dict(run)
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} is still {run['status']} after {within}s")


async def test_requests_without_a_valid_key_are_refused(server: Server) -> None:
    for key in (None, "ptw_000000000000_forged"):
        with pytest.raises(GraphQLError) as refused:
            await server.client(key).execute("{ viewer { id } }")
        assert refused.value.code == "UNAUTHENTICATED"


async def test_introspection_shows_every_root_field(server: Server) -> None:
    query = (
        "{ __schema { queryType { fields { name } } mutationType { fields { name } } "
        "subscriptionType { fields { name } } } }"
    )
    schema = (await server.client().execute(query))["__schema"]
    for kind, field in (
        ("Query", "queryType"),
        ("Mutation", "mutationType"),
        ("Subscription", "subscriptionType"),
    ):
        assert ROOT_FIELDS[kind] <= {f["name"] for f in schema[field]["fields"]}


async def test_builtin_workflows_resolve_by_name(server: Server) -> None:
    for name in ("digits-mlp", "digits-cnn", "tiny-lm"):
        await workflow_id(server.client(), name)


async def test_digits_mlp_succeeds_and_its_series_replays_exactly(server: Server) -> None:
    client = server.client()
    run_id = await start(client, "digits-mlp", {"epochs": 3})
    run = await wait_for(client, run_id, {"SUCCEEDED", "FAILED"})
    assert run["status"] == "SUCCEEDED", run["error"]
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(run["metricKeys"])
    assert run["summary"]["val_accuracy"] > 0.5

    stored: dict[str, list[tuple[int, float]]] = {}
    for key in run["metricKeys"]:
        series = (await client.execute(SERIES, {"id": run_id, "key": key, "max": 100000}))["run"]["metrics"]
        steps = [p["step"] for p in series["points"]]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
        assert series["total"] == len(steps) > 0
        stored[key] = [(p["step"], p["value"]) for p in series["points"]]

    replayed: dict[str, list[tuple[int, float]]] = {k: [] for k in stored}
    total = sum(map(len, stored.values()))

    async def replay() -> None:
        count = 0
        async for data in client.subscribe(REPLAY, {"id": run_id}):
            for p in data["runMetrics"]["points"]:
                replayed[p["key"]].append((p["step"], p["value"]))
                count += 1
            if count >= total:
                return

    await asyncio.wait_for(replay(), 30)
    assert {k: sorted(v) for k, v in replayed.items()} == stored


async def test_a_failing_run_fails_with_its_traceback(server: Server) -> None:
    client = server.client()
    registered = await client.execute(
        "mutation($i: RegisterWorkflowInput!) { registerWorkflow(input: $i) { id } }",
        {"i": {"name": "e2e-raises", "entrypoint": "tests.workflows.sample:raises"}},
    )
    data = await client.execute(START, {"input": {"workflowId": registered["registerWorkflow"]["id"]}})
    run = await wait_for(client, data["startRun"]["id"], {"SUCCEEDED", "FAILED"})
    assert run["status"] == "FAILED"
    assert "ValueError" in run["error"] and "Traceback" in run["error"]


REGISTER = "mutation($i: RegisterWorkflowInput!) { registerWorkflow(input: $i) { id entrypoint } }"


async def executors_announced(client: GraphQLClient, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not (await client.execute("{ executorPool { executors { id } } }"))["executorPool"]["executors"]:
        assert time.monotonic() < deadline, "the local executors never announced themselves"
        await asyncio.sleep(0.2)


async def test_an_entrypoint_the_executors_cannot_import_is_refused_at_registration(server: Server) -> None:
    client = server.client()
    await executors_announced(client)
    with pytest.raises(GraphQLError) as refused:
        await client.execute(
            REGISTER, {"i": {"name": "e2e-missing", "entrypoint": "no_such_package.train:main"}}
        )
    assert refused.value.code == "BAD_USER_INPUT"
    message = str(refused.value)
    assert "No module named 'no_such_package'" in message and "PYTHONPATH" in message
    assert refused.value.errors[0]["extensions"].get("field") == "entrypoint"
    # A module the executors have (tests/ is on their path) registers.
    fine = await client.execute(
        REGISTER, {"i": {"name": "e2e-found", "entrypoint": "tests.workflows.sample:raises"}}
    )
    assert fine["registerWorkflow"]["entrypoint"] == "tests.workflows.sample:raises"


async def test_a_long_tiny_lm_run_is_cancelled(server: Server) -> None:
    client = server.client()
    run_id = await start(client, "tiny-lm", {"steps": 100000})
    await wait_for(client, run_id, {"RUNNING"}, within=60)
    cancelled = await client.execute("mutation($id: ID!) { cancelRun(id: $id) { status } }", {"id": run_id})
    assert cancelled["cancelRun"]["status"] in {"CANCELLING", "CANCELLED"}
    started = time.monotonic()
    run = await wait_for(client, run_id, {"CANCELLED", "FAILED", "SUCCEEDED"}, within=30)
    assert run["status"] == "CANCELLED"
    assert time.monotonic() - started < 15


async def test_bad_params_are_refused_with_their_path(server: Server) -> None:
    client = server.client()
    wid = await workflow_id(client, "digits-mlp")
    with pytest.raises(GraphQLError) as refused:
        await client.execute(START, {"input": {"workflowId": wid, "params": {"lr": "fast"}}})
    assert refused.value.code == "BAD_USER_INPUT"
    assert "lr" in str(refused.value)


def test_keys_create_prints_a_working_key_last(server: Server) -> None:
    env = {**os.environ, "PTW_DATA_DIR": str(server.data_dir)}
    out = subprocess.run(
        [sys.executable, "-m", "ptw.cli", "keys", "create", "--project", "e2e-team", "--role", "viewer"],
        cwd=server.data_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    key = out.strip().splitlines()[-1]
    assert key.startswith("ptw_")
    viewer = httpx.post(
        f"{server.url}/graphql",
        json={"query": "{ viewer { projects { name role } } }"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()
    assert viewer["data"]["viewer"]["projects"] == [{"name": "e2e-team", "role": "VIEWER"}]


def test_ptw_run_watch_follows_a_run_to_its_summary(server: Server) -> None:
    env = {**os.environ, "PTW_DATA_DIR": str(server.data_dir), "PTW_URL": server.url, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "ptw.cli", "run", "digits-mlp", "-p", "epochs=2", "--watch"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCEEDED" in done.stdout and "val_accuracy" in done.stdout


def test_health_endpoints(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200 and ready.json()["database"] is True
    assert "ptw_" in httpx.get(f"{server.url}/metrics").text
