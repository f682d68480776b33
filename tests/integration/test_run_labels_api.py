"""updateRun and short ids over the real app: a run's name, tags and notes; the id the UI and CLI print."""

from __future__ import annotations

from ptw.domain.tenancy import Role
from ptw.infra.bootstrap import Services
from tests.fixtures.graphql_client import GraphQL, error_codes, issue_key

pytest_plugins = ["tests.fixtures.api"]

START = """mutation($input: StartRunInput!) { startRun(input: $input) { id shortId name tags notes } }"""
UPDATE = """mutation($id: ID!, $input: UpdateRunInput!) {
  updateRun(id: $id, input: $input) { id name tags notes } }"""
RUN = "query($id: ID!) { run(id: $id) { id name tags notes } }"


async def start(gql: GraphQL, **extra: object) -> dict[str, object]:
    workflow = await gql.data('{ workflow(name: "digits-mlp") { id } }')
    run_input = {"workflowId": workflow["workflow"]["id"], **extra}
    started: dict[str, object] = (await gql.data(START, {"input": run_input}))["startRun"]
    return started


async def test_a_run_gets_a_readable_name_and_a_member_edits_its_labels(gql: GraphQL) -> None:
    run = await start(gql)
    assert isinstance(run["name"], str) and str(run["name"]).endswith(str(run["shortId"])[:4])
    assert (run["tags"], run["notes"]) == ([], None)
    named = await start(gql, name="resnet-sweep-3", tags=["baseline", "baseline", "gpu"])
    assert (named["name"], named["tags"]) == ("resnet-sweep-3", ["baseline", "gpu"])
    updated = await gql.data(UPDATE, {"id": named["id"], "input": {"notes": "lr too high", "tags": ["x"]}})
    assert updated["updateRun"] == {
        "id": named["id"],
        "name": "resnet-sweep-3",
        "tags": ["x"],
        "notes": "lr too high",
    }
    again = (await gql.data(RUN, {"id": named["id"]}))["run"]
    assert (again["name"], again["tags"], again["notes"]) == ("resnet-sweep-3", ["x"], "lr too high")
    bad = await gql(UPDATE, {"id": named["id"], "input": {"tags": ["a,b"]}})
    assert error_codes(bad) == ["BAD_USER_INPUT"]


async def test_a_viewer_may_not_edit_a_run(gql: GraphQL, services: Services) -> None:
    run = await start(gql)
    viewer = gql.as_key((await issue_key(services, "alpha", Role.VIEWER)).secret)
    assert error_codes(await viewer(UPDATE, {"id": run["id"], "input": {"name": "mine"}})) == ["FORBIDDEN"]


async def test_the_short_id_is_accepted_wherever_a_run_id_is(gql: GraphQL, services: Services) -> None:
    run = await start(gql)
    short = str(run["shortId"])
    assert len(short) == 8
    assert (await gql.data(RUN, {"id": short}))["run"]["id"] == run["id"]
    renamed = await gql.data(UPDATE, {"id": short, "input": {"name": "by-short-id"}})
    assert renamed["updateRun"]["name"] == "by-short-id"
    logged = await gql.data(
        'mutation($id: ID!) { logMetrics(runId: $id, points: [{key: "loss", step: 0, value: 1.0}]) }',
        {"id": short},
    )
    assert logged["logMetrics"] == 1
    cancelled = await gql.data("mutation($id: ID!) { cancelRun(id: $id) { status } }", {"id": short})
    assert cancelled["cancelRun"]["status"] == "CANCELLED"
    outsider = gql.as_key((await issue_key(services, "other")).secret)
    assert error_codes(await outsider(RUN, {"id": short})) == ["NOT_FOUND"]
    assert error_codes(await gql(RUN, {"id": "ab"})) == ["BAD_USER_INPUT"]
