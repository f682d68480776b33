"""Per-project quotas over the real app: the operator sets them with `ptw projects quota` (straight against
the database), a project over its queued runs or unfinished optimizations is refused QUOTA_EXCEEDED, and
another project is not touched by it."""

from __future__ import annotations

import os
import subprocess
import sys

from ptw.infra.bootstrap import Services
from tests.fixtures.graphql_client import GraphQL, Key, error_codes, issue_key

pytest_plugins = ["tests.fixtures.api"]

START = "mutation($w: ID!) { startRun(input: {workflowId: $w}) { id status } }"
SEARCH = """mutation($w: ID!) { startOptimization(input: {workflowId: $w, kind: HYPERPARAMETER_SEARCH,
  objective: "loss", space: {lr: {type: "float", low: 0.001, high: 0.1}}, maxTrials: 2}) { id } }"""


async def workflow_id(gql: GraphQL) -> str:
    return str((await gql.data('{ workflow(name: "digits-mlp") { id } }'))["workflow"]["id"])


def operator(services: Services, *args: str) -> str:
    env = {**os.environ, "PTW_DATA_DIR": str(services.settings.data_dir)}
    env.pop("PTW_DATABASE_URL", None)
    env.pop("PTW_REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "ptw.cli", "projects", "quota", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_queued_runs_and_optimizations_are_bounded_per_project(
    gql: GraphQL, services: Services, admin: Key
) -> None:
    assert "2 queued runs, 1 unfinished" in operator(
        services, "alpha", "--queued-runs", "2", "--optimizations", "1"
    )
    workflow = await workflow_id(gql)
    for _ in range(2):
        assert (await gql.data(START, {"w": workflow}))["startRun"]["status"] == "QUEUED"
    refused = await gql(START, {"w": workflow})
    assert error_codes(refused) == ["QUOTA_EXCEEDED"] and "2 queued runs" in str(refused)
    # Another project has its own quota (the default).
    other = gql.as_key((await issue_key(services, "beta")).secret)
    assert (await other.data(START, {"w": workflow}))["startRun"]["status"] == "QUEUED"
    # A queued run cancelled frees its place.
    runs = (await gql.data("{ runs { edges { node { id status } } } }"))["runs"]["edges"]
    queued = [e["node"]["id"] for e in runs if e["node"]["status"] == "QUEUED"]
    await gql.data("mutation($id: ID!) { cancelRun(id: $id) { status } }", {"id": queued[0]})
    assert (await gql.data(START, {"w": workflow}))["startRun"]["status"] == "QUEUED"

    assert (await gql.data(SEARCH, {"w": workflow}))["startOptimization"]["id"]
    assert error_codes(await gql(SEARCH, {"w": workflow})) == ["QUOTA_EXCEEDED"]
    assert (await other.data(SEARCH, {"w": workflow}))["startOptimization"]["id"]
    # Back to the defaults.
    assert "500 queued runs, 20 unfinished" in operator(services, "alpha")
    assert (await gql.data(START, {"w": workflow}))["startRun"]["status"] == "QUEUED"
