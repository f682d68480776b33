"""The GraphQL API over the real app and a real (SQLite) database: auth, queries, mutations, errors,
subscriptions over graphql-transport-ws, SQL round trips of a dashboard page, and the HTTP endpoints."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
from typing import Any

import httpx
import pytest
import websockets
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation as StrawberryOperation

from ptw.api.app import create_app
from ptw.api.ids import encode_id
from ptw.api.metrics.types import MetricBatch as MetricBatchType
from ptw.domain.tenancy import Role
from ptw.infra.bootstrap import Services
from ptw.infra.settings import Settings
from tests.fixtures.graphql_client import GraphQL, Key, TransportWs, error_codes, issue_key

# The API fixtures (services, admin, app, gql, live_url, ws_connect) live in tests/fixtures/api.py.
pytest_plugins = ["tests.fixtures.api"]

VIEWER = "{ viewer { id name projects { id name role } } }"
WORKFLOW_BY_NAME = "query($n: String!) { workflow(name: $n) { id name builtin entrypoint defaults } }"
START = "mutation($input: StartRunInput!) { startRun(input: $input) { id status params } }"
RUN = "query($id: ID!) { run(id: $id) { id status workflow { name } project { name } } }"
LOG = "mutation($run: ID!, $points: [MetricInput!]!) { logMetrics(runId: $run, points: $points) }"
SERIES = """query($id: ID!, $key: String!, $max: Int, $after: String) {
  run(id: $id) {
    metrics(key: $key, maxPoints: $max, after: $after) { key total cursor points { step value } }
  }
}"""
RUN_METRICS = """subscription($id: ID!, $after: String, $keys: [String!]) {
  runMetrics(runId: $id, after: $after, keys: $keys) { runId cursor points { key step value } columns }
}"""


async def builtin_id(gql: GraphQL, name: str = "digits-mlp") -> str:
    return str((await gql.data(WORKFLOW_BY_NAME, {"n": name}))["workflow"]["id"])


async def start_run(gql: GraphQL, params: dict[str, Any] | None = None, **extra: Any) -> str:
    run_input = {"workflowId": await builtin_id(gql), "params": params or {}, **extra}
    return str((await gql.data(START, {"input": run_input}))["startRun"]["id"])


def points(key: str, steps: range, scale: float = 1.0) -> list[dict[str, Any]]:
    return [{"key": key, "step": s, "value": s * scale} for s in steps]


# --- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "ptw_000000000000_forged", "not-a-key"])
async def test_http_without_a_valid_key_is_401_unauthenticated(gql: GraphQL, key: str | None) -> None:
    response = await gql.as_key(key).post(VIEWER)
    assert response.status_code == 401
    body = response.json()
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_revoked_key_is_refused(gql: GraphQL, services: Services, admin: Key) -> None:
    other = await issue_key(services, "alpha", Role.VIEWER)
    assert (await gql.as_key(other.secret).post(VIEWER)).status_code == 200
    revoked = await gql.data(
        "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }",
        {"id": encode_id("ApiKey", other.key_id)},
    )
    assert revoked["revokeApiKey"]["revokedAt"] is not None
    assert (await gql.as_key(other.secret).post(VIEWER)).status_code == 401


async def test_viewer_is_the_key_with_its_projects_and_roles(gql: GraphQL, admin: Key) -> None:
    viewer = (await gql.data(VIEWER))["viewer"]
    assert viewer["id"] == encode_id("ApiKey", admin.key_id)
    assert viewer["projects"] == [
        {"id": encode_id("Project", admin.project_id), "name": "alpha", "role": "ADMIN"}
    ]


async def test_create_project_and_api_key(gql: GraphQL) -> None:
    project = (await gql.data('mutation { createProject(name: "beta") { id name role } }'))["createProject"]
    assert project["role"] == "ADMIN"
    issued = (
        await gql.data(
            'mutation($p: ID!) { createApiKey(projectId: $p, role: VIEWER, name: "ci") '
            "{ id secret role project { name } apiKey { name prefix revokedAt } } }",
            {"p": project["id"]},
        )
    )["createApiKey"]
    assert issued["role"] == "VIEWER" and issued["project"]["name"] == "beta"
    assert issued["secret"].startswith(f"ptw_{issued['apiKey']['prefix']}_")
    as_viewer = await gql.as_key(issued["secret"]).data(VIEWER)
    assert [p["role"] for p in as_viewer["viewer"]["projects"]] == ["VIEWER"]


# --- workflows ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn", "tiny-lm"])
async def test_builtins_resolve_by_name(gql: GraphQL, name: str) -> None:
    workflow = (await gql.data(WORKFLOW_BY_NAME, {"n": name}))["workflow"]
    assert workflow["name"] == name and workflow["builtin"] is True
    assert workflow["entrypoint"].startswith("ptw.executors.workflows.")


async def test_workflows_connection_lists_builtins(gql: GraphQL) -> None:
    data = await gql.data("{ workflows { edges { node { name builtin } cursor } pageInfo { hasNextPage } } }")
    names = {e["node"]["name"] for e in data["workflows"]["edges"]}
    assert {"digits-mlp", "digits-cnn", "tiny-lm"} <= names


REGISTER = """mutation($input: RegisterWorkflowInput!) {
  registerWorkflow(input: $input) { id name entrypoint builtin paramsSchema defaults project { name } }
}"""


async def test_register_workflow(gql: GraphQL) -> None:
    schema = {"type": "object", "properties": {"lr": {"type": "number"}}}
    workflow = (
        await gql.data(
            REGISTER,
            {
                "input": {
                    "name": "my-train",
                    "entrypoint": "my_pkg.train:main",
                    "paramsSchema": schema,
                    "defaults": {"lr": 0.1},
                }
            },
        )
    )["registerWorkflow"]
    assert workflow["builtin"] is False and workflow["project"]["name"] == "alpha"
    assert workflow["defaults"] == {"lr": 0.1}
    by_id = await gql.data("query($id: ID!) { workflow(id: $id) { name } }", {"id": workflow["id"]})
    assert by_id["workflow"]["name"] == "my-train"


async def test_a_workflow_answers_the_checkpoint_retention_its_runs_follow(gql: GraphQL) -> None:
    query = "query($id: ID!) { workflow(id: $id) { checkpointRetention { keepLast bestBy direction } } }"
    retention = {"keepLast": 5, "bestBy": "val_loss", "direction": "MAXIMIZE"}
    registered = (
        await gql.data(
            REGISTER,
            {
                "input": {
                    "name": "kept",
                    "entrypoint": "ptw.executors.workflows.digits_mlp:train",
                    "checkpointRetention": retention,
                }
            },
        )
    )["registerWorkflow"]
    kept = await gql.data(query, {"id": registered["id"]})
    assert kept["workflow"]["checkpointRetention"] == retention
    default = await gql.data(query, {"id": await builtin_id(gql)})
    assert default["workflow"]["checkpointRetention"] == {
        "keepLast": 3,
        "bestBy": None,
        "direction": "MINIMIZE",
    }


async def test_register_workflow_with_a_malformed_entrypoint_is_bad_user_input(gql: GraphQL) -> None:
    body = await gql(REGISTER, {"input": {"name": "broken", "entrypoint": "not an entrypoint"}})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "entrypoint" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["field"] == "entrypoint"


# --- runs -----------------------------------------------------------------------------------------


async def test_start_run_merges_defaults_and_is_idempotent(gql: GraphQL) -> None:
    first = await start_run(gql, {"epochs": 2}, idempotencyKey="abc")
    again = await start_run(gql, {"epochs": 2}, idempotencyKey="abc")
    assert first == again
    run = (await gql.data("query($id: ID!) { run(id: $id) { status params } }", {"id": first}))["run"]
    assert run["status"] == "QUEUED" and run["params"]["epochs"] == 2 and run["params"]["lr"] == 0.01


async def test_start_run_with_bad_params_is_bad_user_input_with_the_path(gql: GraphQL) -> None:
    body = await gql(START, {"input": {"workflowId": await builtin_id(gql), "params": {"epochs": "many"}}})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    error = body["errors"][0]
    assert "epochs" in error["message"] and "epochs" in error["extensions"]["path"]


async def test_unknown_id_is_not_found_and_malformed_id_is_bad_user_input(gql: GraphQL) -> None:
    missing = encode_id("Run", "00000000-0000-4000-8000-000000000000")
    assert error_codes(await gql(RUN, {"id": missing})) == ["NOT_FOUND"]
    for malformed in [
        "nonsense",
        base64.b64encode(b"Run:not-a-uuid").decode(),
        base64.b64encode(b"x").decode(),
    ]:
        assert error_codes(await gql(RUN, {"id": malformed})) == ["BAD_USER_INPUT"], malformed
    # A workflow's id given where a run's is expected is reported like a missing run.
    assert error_codes(await gql(RUN, {"id": await builtin_id(gql)})) == ["NOT_FOUND"]


async def test_runs_connection_pages_through_every_run_once(gql: GraphQL) -> None:
    started = [await start_run(gql, {"seed": i}) for i in range(5)]
    query = """query($after: String) { runs(first: 2, after: $after) {
      edges { node { id } cursor } pageInfo { hasNextPage endCursor } } }"""
    seen, after, pages = [], None, 0
    while True:
        runs = (await gql.data(query, {"after": after}))["runs"]
        seen += [e["node"]["id"] for e in runs["edges"]]
        pages += 1
        if not runs["pageInfo"]["hasNextPage"]:
            break
        after = runs["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == list(reversed(started))  # newest first
    oldest = await gql.data("{ runs(first: 1, orderBy: CREATED_AT_ASC) { edges { node { id } } } }")
    assert oldest["runs"]["edges"][0]["node"]["id"] == started[0]
    filtered = await gql.data("{ runs(filter: {status: [CANCELLED]}) { edges { node { id } } } }")
    assert filtered["runs"]["edges"] == []


async def test_cancel_a_queued_run(gql: GraphQL) -> None:
    run_id = await start_run(gql)
    cancelled = await gql.data(
        "mutation($id: ID!) { cancelRun(id: $id) { id status finishedAt } }", {"id": run_id}
    )
    assert cancelled["cancelRun"]["status"] == "CANCELLED" and cancelled["cancelRun"]["finishedAt"]


NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Run { status } ... on Workflow { name } ... on Project { name role } } }"""


async def test_node_resolves_each_type(gql: GraphQL, admin: Key) -> None:
    run_id = await start_run(gql)
    workflow_id = await builtin_id(gql)
    project_id = encode_id("Project", admin.project_id)
    for gid, typename in [(run_id, "Run"), (workflow_id, "Workflow"), (project_id, "Project")]:
        node = (await gql.data(NODE, {"id": gid}))["node"]
        assert node["__typename"] == typename and node["id"] == gid
    missing = encode_id("Optimization", "00000000-0000-4000-8000-000000000000")
    assert (await gql.data(NODE, {"id": missing}))["node"] is None
    assert error_codes(await gql(NODE, {"id": "garbage"})) == ["BAD_USER_INPUT"]


async def test_another_projects_run_looks_exactly_like_a_missing_one(
    gql: GraphQL, services: Services
) -> None:
    run_id = await start_run(gql)
    outsider = gql.as_key((await issue_key(services, "other")).secret)
    missing = encode_id("Run", "00000000-0000-4000-8000-000000000000")
    hidden_body, missing_body = await outsider(RUN, {"id": run_id}), await outsider(RUN, {"id": missing})
    assert error_codes(hidden_body) == error_codes(missing_body) == ["NOT_FOUND"]
    assert hidden_body["data"] == missing_body["data"] == {"run": None}
    assert (await outsider.data(NODE, {"id": run_id}))["node"] is None
    assert (await outsider.data("{ runs { edges { node { id } } } }"))["runs"]["edges"] == []
    assert error_codes(await outsider(LOG, {"run": run_id, "points": points("x", range(1))})) == ["NOT_FOUND"]
    cancel = await outsider("mutation($id: ID!) { cancelRun(id: $id) { id } }", {"id": run_id})
    assert error_codes(cancel) == ["NOT_FOUND"]


# --- metrics --------------------------------------------------------------------------------------


async def test_log_metrics_then_read_the_series_in_step_order_and_downsampled(gql: GraphQL) -> None:
    run_id = await start_run(gql)
    logged = await gql.data(LOG, {"run": run_id, "points": list(reversed(points("loss", range(100))))})
    assert logged["logMetrics"] == 100
    series = (await gql.data(SERIES, {"id": run_id, "key": "loss", "max": 500}))["run"]["metrics"]
    assert series["total"] == 100 and [p["step"] for p in series["points"]] == list(range(100))
    small = (await gql.data(SERIES, {"id": run_id, "key": "loss", "max": 10}))["run"]["metrics"]
    assert small["total"] == 100 and len(small["points"]) <= 10
    assert small["points"][0]["step"] == 0 and small["points"][-1]["step"] == 99
    await gql.data(LOG, {"run": run_id, "points": points("loss", range(100, 103))})
    newer = await gql.data(SERIES, {"id": run_id, "key": "loss", "max": 500, "after": series["cursor"]})
    assert [p["step"] for p in newer["run"]["metrics"]["points"]] == [100, 101, 102]
    latest = await gql.data(
        "query($id: ID!) { run(id: $id) { metricKeys latestMetrics { key step } } }", {"id": run_id}
    )
    assert latest["run"] == {"metricKeys": ["loss"], "latestMetrics": [{"key": "loss", "step": 102}]}


async def test_a_whole_series_reads_as_columns(gql: GraphQL) -> None:
    run_id = await start_run(gql)
    for start in range(0, 3000, 750):  # 250 points a call: the input list limit
        await gql.data(LOG, {"run": run_id, "points": points("loss", range(start, start + 750, 3))})
    query = """query($id: ID!, $after: String) { run(id: $id) {
      metrics(key: "loss", maxPoints: null, after: $after) {
        total cursor columns points { step value } } } }"""
    whole = (await gql.data(query, {"id": run_id}))["run"]["metrics"]
    columns = whole["columns"]["loss"]
    assert whole["total"] == 1000 and columns["steps"] == list(range(0, 3000, 3))
    assert columns["values"] == [p["value"] for p in whole["points"]]
    assert columns["steps"] == [p["step"] for p in whole["points"]] and len(columns["timestamps"]) == 1000
    rest = (await gql.data(query, {"id": run_id, "after": whole["cursor"]}))["run"]["metrics"]
    assert (rest["total"], rest["columns"], rest["cursor"]) == (
        0,
        {"loss": {"steps": [], "values": [], "timestamps": []}},
        whole["cursor"],
    )


async def test_a_page_of_runs_costs_the_same_sql_statements_whatever_its_size(
    gql: GraphQL, services: Services
) -> None:
    for i in range(50):
        run_id = await start_run(gql, {"seed": i})
        await gql.data(LOG, {"run": run_id, "points": points("loss", range(2)) + points("acc", range(2))})
    query = """query($n: Int!) { runs(first: $n) { edges { node { id status
      workflow { name } project { name } latestMetrics { key value } } } } }"""

    async def statements(n: int) -> int:
        before = services.database.statements
        data = await gql.data(query, {"n": n})
        assert len(data["runs"]["edges"]) == n
        assert all(len(e["node"]["latestMetrics"]) == 2 for e in data["runs"]["edges"])
        return services.database.statements - before

    ten, fifty = await statements(10), await statements(50)
    assert ten == fifty
    print("statements for a page of runs:", ten, fifty)
    assert fifty <= 7, fifty  # authentication (3) + runs + workflows + projects + latest metrics


# --- errors ---------------------------------------------------------------------------------------


async def test_unexpected_errors_are_masked(
    gql: GraphQL, services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise RuntimeError("password=hunter2 at /srv/secret.py")

    monkeypatch.setattr(services.pool, "state", broken)
    body = await gql("{ executorPool { workers } }")
    assert body["errors"][0]["message"] == "Unexpected error."
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert "hunter2" not in str(body)
    assert "hunter2" in caplog.text  # logged on the server


async def test_invalid_queries_keep_their_message(gql: GraphQL) -> None:
    body = await gql("{ nope }")
    assert "nope" in body["errors"][0]["message"]
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_optimizations_are_listed_and_a_bad_start_is_bad_user_input(gql: GraphQL) -> None:
    listed = await gql.data("{ optimizations { edges { node { id } } pageInfo { hasNextPage } } }")
    assert listed["optimizations"]["edges"] == []
    body = await gql(
        "mutation($w: ID!) {"
        " startOptimization(input: {workflowId: $w, kind: HYPERPARAMETER_SEARCH}) { id } }",
        {"w": await builtin_id(gql)},
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_executor_pool(gql: GraphQL) -> None:
    await start_run(gql)
    pool = (await gql.data("{ executorPool { workers busy queueDepth desiredWorkers } }"))["executorPool"]
    assert pool["workers"] == 0 and pool["queueDepth"] == 1


# --- subscriptions --------------------------------------------------------------------------------


async def collect_batches(ws: TransportWs, op_id: str, until_steps: int) -> list[dict[str, Any]]:
    batches: list[dict[str, Any]] = []
    while sum(len(b["points"]) for b in batches) < until_steps:
        message = await ws.receive()
        assert message["type"] == "next" and message["id"] == op_id, message
        assert "errors" not in message["payload"], message
        batch = message["payload"]["data"]["runMetrics"]
        # The columns hold the same points as `points`, per key in step order.
        by_key: dict[str, list[tuple[int, float]]] = {}
        for p in batch["points"]:
            by_key.setdefault(p["key"], []).append((p["step"], p["value"]))
        columns = batch["columns"]
        assert {k: list(zip(c["steps"], c["values"], strict=True)) for k, c in columns.items()} == by_key
        assert all(len(c["timestamps"]) == len(c["steps"]) for c in columns.values())
        batches.append(batch)
    return batches


async def test_subscribers_of_one_run_with_one_selection_share_one_execution_of_each_batch(
    gql: GraphQL, admin: Key, ws_connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    executed: list[tuple[str, ...]] = []
    plain = StrawberryGraphQLCoreExecutionContext.execute_operation

    def counted(self: Any, serially: bool | None = None) -> Any:
        if isinstance(self.root_value, MetricBatchType):
            executed.append(tuple(self.variable_values.coerced.get("keys") or ()))
        return plain(self, serially)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_operation", counted)
    through_strawberry: list[str] = []
    plain_next = StrawberryOperation.send_next

    async def send_next(self: Any, result: Any) -> None:
        through_strawberry.append(self.id)
        await plain_next(self, result)

    monkeypatch.setattr(StrawberryOperation, "send_next", send_next)
    run_id = await start_run(gql)
    subscribers = [("a", None), ("b", None), ("c", ["acc"])]
    async with contextlib.AsyncExitStack() as stack:
        sockets = {}
        for op_id, keys in subscribers:
            ws = TransportWs(await stack.enter_async_context(ws_connect()))
            assert (await ws.init({"authorization": f"Bearer {admin.secret}"}))["type"] == "connection_ack"
            await ws.subscribe(op_id, RUN_METRICS, {"id": run_id, "keys": keys})
            sockets[op_id] = ws
        # A first batch makes sure every subscription is live (replayed or not, it is received).
        await gql.data(LOG, {"run": run_id, "points": points("acc", range(1)) + points("loss", range(1))})
        for op_id, ws in sockets.items():
            await collect_batches(ws, op_id, 1)
        executed.clear()
        through_strawberry.clear()
        await gql.data(
            LOG, {"run": run_id, "points": points("acc", range(1, 3)) + points("loss", range(1, 3))}
        )
        received = {op_id: await ws.receive() for op_id, ws in sockets.items()}
        # "a" and "b" asked the same: executed once, the same payload sent to each under its own id; the
        # second of them was sent it straight from its resolver, past strawberry's per-event machinery.
        assert sorted(executed) == [(), ("acc",)]
        assert sorted(through_strawberry) in (["a", "c"], ["b", "c"])
        assert [received[op_id]["id"] for op_id in "abc"] == ["a", "b", "c"]
        assert received["a"]["payload"] == received["b"]["payload"]
        batch = received["a"]["payload"]["data"]["runMetrics"]
        assert [(p["key"], p["step"]) for p in batch["points"]] == [
            ("acc", 1),
            ("acc", 2),
            ("loss", 1),
            ("loss", 2),
        ]
        assert [p["key"] for p in received["c"]["payload"]["data"]["runMetrics"]["points"]] == ["acc", "acc"]


async def test_run_metrics_replays_then_streams_live_then_resumes_after_a_cursor(
    gql: GraphQL, admin: Key, ws_connect: Any
) -> None:
    run_id = await start_run(gql)
    await gql.data(LOG, {"run": run_id, "points": points("loss", range(0, 3))})
    await gql.data(LOG, {"run": run_id, "points": points("loss", range(3, 6))})
    async with ws_connect() as socket:
        ws = TransportWs(socket)
        assert (await ws.init({"authorization": f"Bearer {admin.secret}"}))["type"] == "connection_ack"
        await ws.subscribe("1", RUN_METRICS, {"id": run_id})
        replayed = await collect_batches(ws, "1", 6)
        assert [[p["step"] for p in b["points"]] for b in replayed] == [[0, 1, 2], [3, 4, 5]]
        await gql.data(LOG, {"run": run_id, "points": points("loss", range(6, 8))})
        live = await collect_batches(ws, "1", 2)
        assert [p["step"] for p in live[0]["points"]] == [6, 7]
        cursor = live[-1]["cursor"]
        await ws.complete("1")
    await gql.data(LOG, {"run": run_id, "points": points("loss", range(8, 10))})
    async with ws_connect() as socket:
        ws = TransportWs(socket)
        await ws.init({"authorization": f"Bearer {admin.secret}"})
        await ws.subscribe("2", RUN_METRICS, {"id": run_id, "after": cursor})
        resumed = await collect_batches(ws, "2", 2)
        assert [p["step"] for p in resumed[0]["points"]] == [8, 9]
        await gql.data(
            LOG, {"run": run_id, "points": points("acc", range(1)) + points("loss", range(10, 11))}
        )
        # No duplicate on "2": the next thing it gets is the live batch logged after.
        next_on_2 = await collect_batches(ws, "2", 1)
        assert [p["step"] for p in next_on_2[0]["points"]] == [0, 10]
        await ws.subscribe("3", RUN_METRICS, {"id": run_id, "after": cursor, "keys": ["acc"]})
        only_acc = await collect_batches(ws, "3", 1)
        assert [b["points"] for b in only_acc] == [[{"key": "acc", "step": 0, "value": 0.0}]]


async def test_run_metrics_of_a_finished_run_replays_then_completes(
    gql: GraphQL, admin: Key, ws_connect: Any
) -> None:
    run_id = await start_run(gql)
    await gql.data(LOG, {"run": run_id, "points": points("loss", range(3))})
    await gql.data("mutation($id: ID!) { cancelRun(id: $id) { status } }", {"id": run_id})
    async with ws_connect() as socket:
        ws = TransportWs(socket)
        await ws.init({"authorization": f"Bearer {admin.secret}"})
        await ws.subscribe("1", RUN_METRICS, {"id": run_id})
        assert len((await collect_batches(ws, "1", 3))[0]["points"]) == 3
        assert await ws.receive() == {"id": "1", "type": "complete"}


async def test_run_events_start_with_the_status_and_follow_changes(
    gql: GraphQL, admin: Key, ws_connect: Any
) -> None:
    run_id = await start_run(gql)
    async with ws_connect() as socket:
        ws = TransportWs(socket)
        await ws.init({"authorization": f"Bearer {admin.secret}"})
        await ws.subscribe(
            "1", "subscription($id: ID!) { runEvents(runId: $id) { kind status run { id } } }", {"id": run_id}
        )
        first = await ws.receive()
        assert first["payload"]["data"]["runEvents"] == {
            "kind": "STATUS",
            "status": "QUEUED",
            "run": {"id": run_id},
        }
        await gql.data("mutation($id: ID!) { cancelRun(id: $id) { status } }", {"id": run_id})
        second = await ws.receive()
        assert second["payload"]["data"]["runEvents"]["status"] == "CANCELLED"
        assert await ws.receive() == {"id": "1", "type": "complete"}


async def test_project_runs_streams_new_runs(gql: GraphQL, admin: Key, ws_connect: Any) -> None:
    async with ws_connect() as socket:
        ws = TransportWs(socket)
        await ws.init({"authorization": f"Bearer {admin.secret}"})
        await ws.subscribe(
            "1",
            "subscription($p: ID!) { projectRuns(projectId: $p) { id status } }",
            {"p": encode_id("Project", admin.project_id)},
        )
        await asyncio.sleep(0.2)  # the subscription is registered once the server started the generator
        run_id = await start_run(gql)
        message = await ws.receive()
        assert message["payload"]["data"]["projectRuns"] == {"id": run_id, "status": "QUEUED"}


async def test_subscription_to_an_unknown_run_is_not_found(admin: Key, ws_connect: Any) -> None:
    async with ws_connect() as socket:
        ws = TransportWs(socket)
        await ws.init({"authorization": f"Bearer {admin.secret}"})
        await ws.subscribe("1", RUN_METRICS, {"id": encode_id("Run", "00000000-0000-4000-8000-000000000000")})
        message = await ws.receive()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("payload", [None, {"authorization": "Bearer ptw_000000000000_forged"}])
async def test_websocket_without_a_valid_key_is_closed_4403(ws_connect: Any, payload: Any) -> None:
    async with ws_connect() as socket:
        ws = TransportWs(socket)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.init(payload)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_legacy_graphql_ws_protocol_works(gql: GraphQL, admin: Key, ws_connect: Any) -> None:
    run_id = await start_run(gql)
    async with ws_connect("graphql-ws") as socket:
        ws = TransportWs(socket)
        await ws.send({"type": "connection_init", "payload": {"authorization": f"Bearer {admin.secret}"}})
        assert (await ws.receive())["type"] == "connection_ack"
        await ws.send(
            {
                "id": "1",
                "type": "start",
                "payload": {
                    "query": "subscription($id: ID!) { runEvents(runId: $id) { status } }",
                    "variables": {"id": run_id},
                },
            }
        )
        message = await ws.receive()
        assert message["type"] == "data" and message["payload"]["data"]["runEvents"]["status"] == "QUEUED"


# --- HTTP endpoints -------------------------------------------------------------------------------


async def test_health_readiness_and_metrics(
    gql: GraphQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = gql.http
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": True}
    await gql.data(VIEWER)
    await gql.as_key(None).post(VIEWER)
    text = (await http.get("/metrics")).text
    assert 'ptw_graphql_operations_total{name="anonymous",type="query"} 1.0' in text
    assert 'ptw_graphql_errors_total{code="UNAUTHENTICATED"} 1.0' in text
    assert 'ptw_http_requests_total{method="POST",path="/graphql",status="200"} 1.0' in text
    assert "ptw_queue_depth 0.0" in text

    async def not_ready() -> dict[str, bool]:
        return {"database": False}

    monkeypatch.setattr(services, "ready", not_ready)
    not_ready_response = await http.get("/readyz")
    assert not_ready_response.status_code == 503
    assert not_ready_response.json() == {"status": "unavailable", "database": False}


async def test_graphiql_loads_without_a_key(gql: GraphQL) -> None:
    page = await gql.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_unexpected_errors_in_subscriptions_are_masked(
    gql: GraphQL, admin: Key, services: Services, ws_connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = await start_run(gql)

    async def broken(*_: Any) -> None:
        raise RuntimeError("dsn=postgres://admin:hunter2@db")

    monkeypatch.setattr(services.metrics, "replay", broken)
    async with ws_connect() as socket:
        ws = TransportWs(socket)
        await ws.init({"authorization": f"Bearer {admin.secret}"})
        await ws.subscribe("1", RUN_METRICS, {"id": run_id})
        message = await ws.receive()
        assert "hunter2" not in str(message)
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["message"] == "Unexpected error."
        assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"


async def test_graphiql_and_introspection_can_be_switched_off(services: Services, admin: Key) -> None:
    closed = dataclasses.replace(
        services, settings=Settings(data_dir=services.settings.data_dir, graphiql=False, introspection=False)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(closed)), base_url="http://ptw.test"
    ) as http:
        assert (await http.get("/graphql", headers={"Accept": "text/html"})).status_code == 404
        gql = GraphQL(http, admin.secret)
        body = await gql("{ __schema { types { name } } }")
        assert body["errors"] and "introspection" in body["errors"][0]["message"].lower()
        assert (await gql.data(VIEWER))["viewer"]["projects"]


async def test_lifespan_runs_the_start_and_stop_hooks_in_order(services: Services) -> None:
    calls: list[str] = []

    async def hook(name: str) -> None:
        calls.append(name)

    app = create_app(
        services,
        on_startup=[lambda: hook("start-1"), lambda: hook("start-2")],
        on_shutdown=[lambda: hook("stop")],
    )
    async with app.router.lifespan_context(app):
        assert calls == ["start-1", "start-2"]
    assert calls == ["start-1", "start-2", "stop"]


async def test_a_revoked_key_ends_its_live_subscriptions(
    gql: GraphQL, services: Services, ws_connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ptw.api.view.KEY_RECHECK_SECONDS", 0.1)
    run_id = await start_run(gql)
    watcher = await issue_key(services, "alpha", Role.VIEWER)
    async with ws_connect() as socket:
        ws = TransportWs(socket)
        await ws.init({"authorization": f"Bearer {watcher.secret}"})
        await ws.subscribe("1", RUN_METRICS, {"id": run_id})
        await gql.data(LOG, {"run": run_id, "points": points("loss", range(1))})
        assert (await ws.receive())["type"] == "next"
        await gql.data(
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", {"id": encode_id("ApiKey", watcher.key_id)}
        )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
