"""The runs query filters and orders through the API: tags, params, metric thresholds, metric order."""

from __future__ import annotations

from typing import Any

from tests.fixtures.graphql_client import GraphQL

pytest_plugins = ["tests.fixtures.api"]

START = "mutation($input: StartRunInput!) { startRun(input: $input) { id } }"
LOG = "mutation($id: ID!, $points: [MetricInput!]!) { logMetrics(runId: $id, points: $points) }"
WORKFLOW = '{ workflow(name: "digits-mlp") { id } }'
RUNS = """query($filter: RunFilter, $orderBy: RunOrder, $metric: String, $first: Int, $after: String) {
  runs(filter: $filter, orderBy: $orderBy, orderMetric: $metric, first: $first, after: $after) {
    edges { node { name } } pageInfo { hasNextPage endCursor } } }"""


async def names(gql: GraphQL, **variables: Any) -> list[str]:
    found: list[str] = []
    after = None
    while True:
        page = (await gql.data(RUNS, {**variables, "after": after}))["runs"]
        found += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def test_runs_are_found_by_tag_param_and_metric(gql: GraphQL) -> None:
    workflow = (await gql.data(WORKFLOW))["workflow"]["id"]
    for n, (lr, acc) in enumerate([(0.01, 0.5), (0.001, 0.9), (0.01, 0.7)]):
        run = (
            await gql.data(
                START,
                {
                    "input": {
                        "workflowId": workflow,
                        "params": {"lr": lr},
                        "name": f"r{n}",
                        "tags": ["t", f"n{n}"],
                    }
                },
            )
        )["startRun"]["id"]
        points = [{"key": "acc", "step": 0, "value": 0.0}, {"key": "acc", "step": 3, "value": acc}]
        await gql.data(LOG, {"id": run, "points": points})

    assert await names(gql, filter={"tags": ["t"]}) == ["r2", "r1", "r0"]
    assert await names(gql, filter={"tags": ["t", "n1"]}) == ["r1"]
    assert await names(gql, filter={"params": {"lr": 0.01}}) == ["r2", "r0"]
    metrics = [{"key": "acc", "op": "GT", "value": 0.6}]
    assert await names(gql, filter={"metrics": metrics}) == ["r2", "r1"]
    assert await names(gql, orderBy="METRIC_DESC", metric="acc", first=1) == ["r1", "r2", "r0"]
    assert await names(gql, orderBy="METRIC_ASC", metric="acc", filter={"tags": ["t"]}) == ["r0", "r2", "r1"]
    assert await names(gql, orderBy="CREATED_AT_ASC", filter={"status": ["QUEUED"]}) == ["r0", "r1", "r2"]


async def test_wrong_filters_are_bad_input(gql: GraphQL) -> None:
    for variables in (
        {"orderBy": "METRIC_DESC"},
        {"metric": "acc"},
        {"filter": {"params": {'x"]': 1}}},
        {"filter": {"params": {"lr": [1]}}},
        {"filter": {"params": [1]}},
    ):
        body = await gql(RUNS, variables)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (variables, body)
