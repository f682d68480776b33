"""External runs over the real app: startExternalRun, heartbeatRun, finishRun, seen by projectRuns."""

from __future__ import annotations

import asyncio
from typing import Any

from ptw.api.ids import encode_id
from tests.fixtures.graphql_client import GraphQL, Key, TransportWs, error_codes

pytest_plugins = ["tests.fixtures.api"]

START = """mutation($input: StartExternalRunInput!) {
  startExternalRun(input: $input) { id status external name tags params workflow { name } } }"""
BEAT = "mutation($id: ID!, $s: JSON) { heartbeatRun(id: $id, summary: $s) { status summary } }"
FINISH = """mutation($id: ID!, $input: FinishRunInput!) {
  finishRun(id: $id, input: $input) { status error summary finishedAt } }"""
LOG = "mutation($run: ID!, $points: [MetricInput!]!) { logMetrics(runId: $run, points: $points) }"
PROJECT_RUNS = "subscription($p: ID!) { projectRuns(projectId: $p) { id status external } }"


async def test_an_external_run_lives_and_ends_through_the_api(
    gql: GraphQL, admin: Key, ws_connect: Any
) -> None:
    project = encode_id("Project", admin.project_id)
    async with ws_connect() as ws:
        live = TransportWs(ws)
        await live.init({"authorization": f"Bearer {admin.secret}"})
        await live.subscribe("1", PROJECT_RUNS, {"p": project})
        await asyncio.sleep(0.2)
        run_input = {"name": "script-1", "params": {"lr": 0.1}, "tags": ["laptop"]}
        run = (await gql.data(START, {"input": run_input}))["startExternalRun"]
        assert (run["status"], run["external"], run["name"], run["tags"], run["params"]) == (
            "RUNNING",
            True,
            "script-1",
            ["laptop"],
            {"lr": 0.1},
        )
        assert run["workflow"]["name"] == "external"
        seen = (await live.receive())["payload"]["data"]["projectRuns"]
        assert seen == {"id": run["id"], "status": "RUNNING", "external": True}
    points = [{"key": "loss", "step": s, "value": 1.0 / (s + 1)} for s in range(3)]
    assert (await gql.data(LOG, {"run": run["id"], "points": points}))["logMetrics"] == 3
    beat = (await gql.data(BEAT, {"id": run["id"], "s": {"best": 0.5}}))["heartbeatRun"]
    assert beat == {"status": "RUNNING", "summary": {"best": 0.5}}
    finish_input = {"status": "FAILED", "error": "ValueError: boom", "summary": {"best": 0.4}}
    done = (await gql.data(FINISH, {"id": run["id"], "input": finish_input}))["finishRun"]
    assert (done["status"], done["error"], done["summary"]) == ("FAILED", "ValueError: boom", {"best": 0.4})
    conflict = await gql(FINISH, {"id": run["id"], "input": {"status": "SUCCEEDED"}})
    assert error_codes(conflict) == ["CONFLICT"]


async def test_start_run_of_the_external_workflow_is_refused(gql: GraphQL) -> None:
    workflow = (await gql.data('{ workflow(name: "external") { id builtin } }'))["workflow"]
    assert workflow["builtin"] is True
    body = await gql("mutation($w: ID!) { startRun(input: {workflowId: $w}) { id } }", {"w": workflow["id"]})
    assert error_codes(body) == ["BAD_USER_INPUT"]
