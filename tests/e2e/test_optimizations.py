"""Searches end to end over GraphQL: in production mode (two API replicas, two workers) a search with TPE and
the median pruner succeeds with its progress streamed live; in embedded mode `ptw optimize --watch` drives
one from the terminal."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ptw.client import GraphQLClient, GraphQLError
from tests.e2e.conftest import Production, Server, Worker

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REGISTER = """mutation($input: RegisterWorkflowInput!) { registerWorkflow(input: $input) { id name } }"""
START = """mutation($input: StartOptimizationInput!) { startOptimization(input: $input) { id status } }"""
PROGRESS = """subscription($id: ID!) {
  optimizationProgress(optimizationId: $id) {
    progress step value optimization { status } result { id number state value }
  }
}"""
OPTIMIZATION = """query($id: ID!) {
  optimization(id: $id) {
    status error
    results(first: 100) { edges { node { id number state value config
      run { status params optimizationResult { id } } } } }
    best { id number value config }
  }
}"""
WORKFLOW = {
    "name": "quadratic",
    "entrypoint": "tests.workflows.objective:quadratic",
    "paramsSchema": {
        "type": "object",
        "properties": {"x": {"type": "number"}, "steps": {"type": "integer"}, "delay": {"type": "number"}},
    },
    "defaults": {"x": 0.0, "steps": 8, "delay": 0.05},
}
SPACE = {"x": {"type": "float", "low": -2.0, "high": 8.0}}


@pytest.fixture(scope="module")
def stack(production: Production) -> Iterator[tuple[Server, Server]]:
    a = production.replica()  # alone first: it creates the built-in workflows of the fresh database
    b = production.replica()
    workers: list[Worker] = [production.worker(), production.worker()]
    assert all(w.process.poll() is None for w in workers)
    yield a, b


async def collect(client: GraphQLClient, optimization_id: str, into: list[dict[str, Any]]) -> None:
    async for data in client.subscribe(PROGRESS, {"id": optimization_id}):
        into.append(data["optimizationProgress"])
        if into[-1]["progress"] == "FINISHED":
            return


async def test_a_search_over_two_workers_succeeds_with_its_progress_streamed(
    stack: tuple[Server, Server],
) -> None:
    a, b = stack
    workflow = (await a.client().execute(REGISTER, {"input": WORKFLOW}))["registerWorkflow"]
    with pytest.raises(GraphQLError) as refused:
        bad = {
            "workflowId": workflow["id"],
            "kind": "HYPERPARAMETER_SEARCH",
            "objective": "objective",
            "space": {"x": {"type": "float", "low": 1, "high": 0}},
        }
        await a.client().execute(START, {"input": bad})
    assert refused.value.code == "BAD_USER_INPUT"
    assert refused.value.errors[0]["extensions"]["path"] == "space.x.high"

    search = {
        "workflowId": workflow["id"],
        "kind": "HYPERPARAMETER_SEARCH",
        "objective": "objective",
        "direction": "MAXIMIZE",
        "space": SPACE,
        "sampler": "tpe",
        "pruner": "median",
        "maxTrials": 8,
        "maxParallel": 2,
    }
    started = (await a.client().execute(START, {"input": search}))["startOptimization"]
    events: list[dict[str, Any]] = []
    await asyncio.wait_for(collect(b.client(), started["id"], events), 150)  # followed on the other replica

    kinds = [e["progress"] for e in events]
    assert kinds[0] == "SNAPSHOT" and kinds[-1] == "FINISHED"
    for kind in ("TRIAL_STARTED", "TRIAL_REPORTED", "TRIAL_COMPLETED", "NEW_BEST"):
        assert kind in kinds, kinds
    done = (await b.client().execute(OPTIMIZATION, {"id": started["id"]}))["optimization"]
    assert done["status"] == "SUCCEEDED", done["error"]
    results = [edge["node"] for edge in done["results"]["edges"]]
    assert sorted(r["number"] for r in results) == list(range(8))
    complete = [r for r in results if r["state"] == "COMPLETE"]
    assert done["best"]["id"] == results[0]["id"] == max(complete, key=lambda r: r["value"])["id"]
    assert abs(done["best"]["config"]["x"] - 3) < 2
    for result in results:
        assert result["run"]["params"]["x"] == result["config"]["x"]
        assert result["run"]["status"] == {"COMPLETE": "SUCCEEDED", "PRUNED": "PRUNED"}[result["state"]]
    assert events[-1]["result"]["id"] == done["best"]["id"]
    for result in results:  # each trial's run leads back to its result, and the result resolves as a node
        assert result["run"]["optimizationResult"]["id"] == result["id"]
    node = "query($id: ID!) { node(id: $id) { ... on OptimizationResult { id number } } }"
    found = (await b.client().execute(node, {"id": done["best"]["id"]}))["node"]
    assert found == {"id": done["best"]["id"], "number": done["best"]["number"]}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("ptw-optimize"))
    try:
        yield srv
    finally:
        srv.stop()


async def test_ptw_optimize_watches_a_search_to_its_end(embedded: Server, tmp_path: Path) -> None:
    await embedded.client().execute(REGISTER, {"input": WORKFLOW})
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    env = {**os.environ, "PTW_URL": embedded.url, "PTW_API_KEY": embedded.key, "COLUMNS": "200"}
    command = [
        sys.executable,
        "-m",
        "ptw.cli",
        "optimize",
        "quadratic",
        "--space",
        f"@{space}",
        "--objective",
        "objective",
        "--max-trials",
        "4",
        "--max-parallel",
        "2",
        "-p",
        "steps=4",
        "--watch",
    ]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    final = done.stdout[done.stdout.rindex("optimization ") :]
    assert "SUCCEEDED" in final and "★" in final
    assert final.count("COMPLETE") + final.count("PRUNED") == 4
