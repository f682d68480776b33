"""POST /api/runs/{id}/metrics over the real app: columns stored like any batch, authorized like any call."""

from __future__ import annotations

from array import array

import httpx

from ptw.domain.tenancy import Role
from ptw.infra.bootstrap import Services
from ptw.tracking import wire
from tests.fixtures.graphql_client import GraphQL, Key, issue_key

pytest_plugins = ["tests.fixtures.api"]

START = 'mutation { startExternalRun(input: {name: "bulk"}) { id shortId } }'
TOTAL = (
    "query($id: ID!, $k: String!) { run(id: $id) { metricKeys metrics(key: $k, maxPoints: 3) { total } } }"
)


def body(n: int, key: str = "loss") -> bytes:
    columns = (array("q", range(n)), array("d", (1.0 / (i + 1) for i in range(n))), array("d", [1e9] * n))
    return wire.encode({key: columns, "acc": columns})


async def post(
    gql: GraphQL, run: str, content: bytes, key: str | None = None, **headers: str
) -> httpx.Response:
    auth = {"Authorization": f"Bearer {key or gql.key}", "Content-Type": wire.CONTENT_TYPE, **headers}
    return await gql.http.post(f"/api/runs/{run}/metrics", content=content, headers=auth)


async def test_columns_are_stored_and_read_back_through_graphql(gql: GraphQL) -> None:
    run = (await gql.data(START))["startExternalRun"]
    answer = await post(gql, run["id"], body(5000))
    assert answer.status_code == 200 and answer.json()["stored"] == 10_000
    by_short = await post(gql, run["shortId"], body(10, key="lr"))
    assert by_short.status_code == 200
    read = (await gql.data(TOTAL, {"id": run["id"], "k": "loss"}))["run"]
    assert read["metricKeys"] == ["acc", "loss", "lr"] and read["metrics"]["total"] == 5000
    json_body = b'{"series": [{"key": "val", "steps": [0, 1], "values": [0.5, 0.25]}]}'
    plain = await post(gql, run["id"], json_body, **{"Content-Type": "application/json"})
    assert plain.status_code == 200 and plain.json()["stored"] == 2


async def test_refusals_carry_their_code_and_status(gql: GraphQL, services: Services, admin: Key) -> None:
    run = (await gql.data(START))["startExternalRun"]
    assert (await post(gql, run["id"], body(3), key="ptw_bad_key")).status_code == 401
    outsider = (await issue_key(services, "other")).secret
    hidden = await post(gql, run["id"], body(3), key=outsider)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "NOT_FOUND")
    viewer = (await issue_key(services, "alpha", Role.VIEWER)).secret
    assert (await post(gql, run["id"], body(3), key=viewer)).status_code == 403
    nan = b'{"series": [{"key": "x", "steps": [0], "values": [NaN]}]}'
    bad = await post(gql, run["id"], nan, **{"Content-Type": "application/json"})
    assert (bad.status_code, bad.json()["code"]) == (400, "BAD_USER_INPUT")
    assert (await post(gql, run["id"], b"PTWC1\nnot json\n")).status_code == 400
    finish = "mutation($id: ID!) { finishRun(id: $id, input: {status: SUCCEEDED}) { status } }"
    await gql.data(finish, {"id": run["id"]})
    late = await post(gql, run["id"], body(3))
    assert (late.status_code, late.json()["code"]) == (409, "CONFLICT")
