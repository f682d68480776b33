"""Tenancy over the real app: every mutation against each role, every query, mutation and subscription
against another tenant's IDs (answered exactly like a missing object), and API keys (format, storage,
node lookup, last use, immediate revocation, secrets kept out of the logs)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import websockets

from ptw.api.ids import encode_id
from ptw.domain.tenancy import Membership, Role
from ptw.infra.bootstrap import Services
from tests.fixtures.graphql_client import GraphQL, Key, TransportWs, error_codes, issue_key

pytest_plugins = ["tests.fixtures.api"]

WORKFLOW_ID = 'query { workflow(name: "digits-mlp") { id } }'
START = "mutation($input: StartRunInput!) { startRun(input: $input) { id } }"
REGISTER = "mutation($input: RegisterWorkflowInput!) { registerWorkflow(input: $input) { id } }"
LOG = 'mutation($run: ID!) { logMetrics(runId: $run, points: [{key: "loss", step: 1, value: 0.5}]) }'
KEY_NODE = "query($id: ID!) { node(id: $id) { ... on ApiKey { id prefix lastUsedAt revokedAt } } }"
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def missing(type_name: str) -> str:
    return encode_id(type_name, str(uuid.uuid4()))


@dataclass
class Tenant:
    """A project with an admin key, a workflow of its own, a run with metrics, and a viewer key."""

    gql: GraphQL
    key: Key
    viewer: Key
    project: str
    workflow: str
    run: str

    @property
    def api_key(self) -> str:
        return encode_id("ApiKey", self.viewer.key_id)


async def builtin(gql: GraphQL) -> str:
    return str((await gql.data(WORKFLOW_ID))["workflow"]["id"])


async def make_tenant(gql: GraphQL, services: Services, name: str) -> Tenant:
    key = await issue_key(services, name)
    as_admin = gql.as_key(key.secret)
    project = encode_id("Project", key.project_id)
    workflow = await as_admin.data(
        REGISTER,
        {
            "input": {
                "projectId": project,
                "name": f"{name}-train",
                "entrypoint": "tests.workflows.sample:logs",
            }
        },
    )
    run = await as_admin.data(START, {"input": {"workflowId": await builtin(as_admin)}})
    run_id = run["startRun"]["id"]
    await as_admin.data(LOG, {"run": run_id})
    viewer = await issue_key(services, name, Role.VIEWER)
    return Tenant(as_admin, key, viewer, project, workflow["registerWorkflow"]["id"], run_id)


@pytest.fixture
async def tenants(gql: GraphQL, services: Services) -> tuple[Tenant, Tenant]:
    return await make_tenant(gql, services, "alpha"), await make_tenant(gql, services, "beta")


# --- another tenant's objects look exactly like missing ones ----------------------------------------

# (operation, variables for a target id, which of the tenant's ids is the target, its type)
Target = Callable[[Tenant], str]
CROSS_TENANT: list[tuple[str, str, Callable[[str], dict[str, Any]], Target, str]] = [
    (
        "run",
        'query($id: ID!) { run(id: $id) { id metrics(key: "loss") { total } } }',
        lambda t: {"id": t},
        lambda a: a.run,
        "Run",
    ),
    ("node run", "query($id: ID!) { node(id: $id) { id } }", lambda t: {"id": t}, lambda a: a.run, "Run"),
    (
        "node workflow",
        "query($id: ID!) { node(id: $id) { id } }",
        lambda t: {"id": t},
        lambda a: a.workflow,
        "Workflow",
    ),
    (
        "node project",
        "query($id: ID!) { node(id: $id) { id } }",
        lambda t: {"id": t},
        lambda a: a.project,
        "Project",
    ),
    (
        "node api key",
        "query($id: ID!) { node(id: $id) { id } }",
        lambda t: {"id": t},
        lambda a: a.api_key,
        "ApiKey",
    ),
    (
        "workflow by id",
        "query($id: ID!) { workflow(id: $id) { id } }",
        lambda t: {"id": t},
        lambda a: a.workflow,
        "Workflow",
    ),
    (
        "workflow by name in project",
        'query($p: ID!) { workflow(name: "alpha-train", projectId: $p) { id } }',
        lambda t: {"p": t},
        lambda a: a.project,
        "Project",
    ),
    (
        "runs of project",
        "query($p: ID!) { runs(filter: {projectId: $p}) { edges { node { id } } } }",
        lambda t: {"p": t},
        lambda a: a.project,
        "Project",
    ),
    (
        "runs of workflow",
        "query($w: ID!) { runs(filter: {workflowId: $w}) { edges { node { id } } } }",
        lambda t: {"w": t},
        lambda a: a.workflow,
        "Workflow",
    ),
    (
        "workflows of project",
        "query($p: ID!) { workflows(projectId: $p) { edges { node { id } } } }",
        lambda t: {"p": t},
        lambda a: a.project,
        "Project",
    ),
    (
        "optimizations of project",
        "query($p: ID!) { optimizations(filter: {projectId: $p}) { edges { node { id } } } }",
        lambda t: {"p": t},
        lambda a: a.project,
        "Project",
    ),
    (
        "cancelRun",
        "mutation($id: ID!) { cancelRun(id: $id) { id } }",
        lambda t: {"id": t},
        lambda a: a.run,
        "Run",
    ),
    ("logMetrics", LOG, lambda t: {"run": t}, lambda a: a.run, "Run"),
    (
        "startRun of its workflow",
        START,
        lambda t: {"input": {"workflowId": t}},
        lambda a: a.workflow,
        "Workflow",
    ),
    (
        "registerWorkflow in its project",
        REGISTER,
        lambda t: {"input": {"projectId": t, "name": "x", "entrypoint": "tests.workflows.sample:logs"}},
        lambda a: a.project,
        "Project",
    ),
    (
        "createApiKey in its project",
        "mutation($p: ID!) { createApiKey(projectId: $p, role: ADMIN) { secret } }",
        lambda t: {"p": t},
        lambda a: a.project,
        "Project",
    ),
    ("revokeApiKey of its key", REVOKE, lambda t: {"id": t}, lambda a: a.api_key, "ApiKey"),
]


def normalised(body: dict[str, Any], *ids: str) -> dict[str, Any]:
    """The body with the ids asked about (global and raw) made equal, so two answers can be compared."""
    text = repr(body)
    for gid in ids:
        text = text.replace(gid, "<id>")
    return {"text": UUID.sub("<uuid>", text)}


@pytest.mark.parametrize(
    ("name", "query", "variables", "target", "type_name"), CROSS_TENANT, ids=[c[0] for c in CROSS_TENANT]
)
async def test_another_tenants_object_is_answered_like_a_missing_one(
    tenants: tuple[Tenant, Tenant],
    name: str,
    query: str,
    variables: Callable[[str], dict[str, Any]],
    target: Target,
    type_name: str,
) -> None:
    alpha, beta = tenants
    hidden_id, missing_id = target(alpha), missing(type_name)
    hidden = await beta.gql(query, variables(hidden_id))
    absent = await beta.gql(query, variables(missing_id))
    assert normalised(hidden, hidden_id) == normalised(absent, missing_id), name
    # Nothing of alpha's leaked, and the operation is one that works for its owner (the test can fail).
    assert hidden_id not in str(hidden.get("data"))
    owner = await alpha.gql(query, variables(hidden_id))
    assert not owner.get("errors") and None not in owner["data"].values(), owner


async def test_lists_and_nested_connections_hold_only_the_callers_objects(
    tenants: tuple[Tenant, Tenant],
) -> None:
    alpha, beta = tenants
    listed = await beta.gql.data(
        """{ viewer { projects { id } }
             runs { edges { node { id project { id } } } }
             workflows(first: 1000) { edges { node { id } } }
             workflow(name: "digits-mlp") { runs { edges { node { id } } } }
             optimizations { edges { node { id } } } }"""
    )
    text = str(listed)
    for alpha_id in (alpha.run, alpha.workflow, alpha.project):
        assert alpha_id not in text
    assert [e["node"]["id"] for e in listed["runs"]["edges"]] == [beta.run]
    assert [e["node"]["id"] for e in listed["workflow"]["runs"]["edges"]] == [beta.run]
    assert listed["viewer"]["projects"] == [{"id": beta.project}]
    # A workflow of alpha's name is not found by name from beta either.
    by_name = await beta.gql('{ workflow(name: "alpha-train") { id } }')
    assert error_codes(by_name) == ["NOT_FOUND"]


SUBSCRIPTIONS = [
    ("subscription($id: ID!) { runMetrics(runId: $id) { cursor } }", lambda a: a.run, "Run"),
    ("subscription($id: ID!) { runEvents(runId: $id) { status } }", lambda a: a.run, "Run"),
    ("subscription($id: ID!) { projectRuns(projectId: $id) { id } }", lambda a: a.project, "Project"),
]


@pytest.mark.parametrize(("query", "target", "type_name"), SUBSCRIPTIONS)
async def test_subscribing_to_another_tenants_object_is_answered_like_a_missing_one(
    tenants: tuple[Tenant, Tenant], ws_connect: Any, query: str, target: Target, type_name: str
) -> None:
    alpha, beta = tenants
    answers = []
    for target_id in (target(alpha), missing(type_name)):
        async with ws_connect() as socket:
            ws = TransportWs(socket)
            assert (await ws.init({"authorization": f"Bearer {beta.key.secret}"}))["type"] == "connection_ack"
            await ws.subscribe("1", query, {"id": target_id})
            message = await ws.receive()
            answers.append(normalised(message, target_id))
            assert message["type"] in ("error", "next") and "NOT_FOUND" in str(message)
    assert answers[0] == answers[1]


# --- roles -------------------------------------------------------------------------------------------


@dataclass
class Project:
    """Project alpha with objects to act on; each mutation gets fresh ones."""

    gql: GraphQL
    services: Services
    admin: Key

    async def run(self) -> str:
        data = await self.gql.data(START, {"input": {"workflowId": await builtin(self.gql)}})
        return str(data["startRun"]["id"])

    async def other_key(self) -> str:
        return encode_id("ApiKey", (await issue_key(self.services, "alpha", Role.VIEWER)).key_id)


Mutation = Callable[[Project], Any]
MUTATIONS: list[tuple[str, Role, Callable[[Project], Any]]] = [
    (
        "createProject",
        Role.ADMIN,
        lambda p: (
            "mutation($n: String!) { createProject(name: $n) { id } }",
            {"n": f"p-{uuid.uuid4().hex[:8]}"},
        ),
    ),
    (
        "createApiKey",
        Role.ADMIN,
        lambda p: (
            "mutation($p: ID!) { createApiKey(projectId: $p, role: VIEWER) { secret } }",
            {"p": encode_id("Project", p.admin.project_id)},
        ),
    ),
    ("revokeApiKey", Role.ADMIN, lambda p: p.other_key()),
    (
        "registerWorkflow",
        Role.MEMBER,
        lambda p: (
            REGISTER,
            {"input": {"name": f"w-{uuid.uuid4().hex[:8]}", "entrypoint": "tests.workflows.sample:logs"}},
        ),
    ),
    ("startRun", Role.MEMBER, lambda p: builtin(p.gql)),
    ("cancelRun", Role.MEMBER, lambda p: p.run()),
    ("logMetrics", Role.MEMBER, lambda p: p.run()),
    ("startOptimization", Role.MEMBER, lambda p: builtin(p.gql)),
]


async def mutation_of(
    name: str, project: Project, make: Callable[[Project], Any]
) -> tuple[str, dict[str, Any]]:
    made = make(project)
    if isinstance(made, tuple):
        return made
    target = await made
    if name == "revokeApiKey":
        return REVOKE, {"id": target}
    if name == "startRun":
        return START, {"input": {"workflowId": target}}
    if name == "cancelRun":
        return "mutation($id: ID!) { cancelRun(id: $id) { id } }", {"id": target}
    if name == "logMetrics":
        return LOG, {"run": target}
    assert name == "startOptimization"
    return (
        "mutation($input: StartOptimizationInput!) { startOptimization(input: $input) { id } }",
        {
            "input": {
                "workflowId": target,
                "kind": "HYPERPARAMETER_SEARCH",
                "objective": "val_loss",
                "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
                "maxTrials": 1,
            }
        },
    )


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name.lower())
@pytest.mark.parametrize(("name", "needed", "make"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
async def test_each_mutation_needs_its_role(
    gql: GraphQL, services: Services, admin: Key, role: Role, name: str, needed: Role, make: Mutation
) -> None:
    query, variables = await mutation_of(name, Project(gql, services, admin), make)
    caller = gql.as_key((await issue_key(services, "alpha", role)).secret)
    body = await caller(query, variables)
    if role >= needed:
        assert not {"FORBIDDEN", "NOT_FOUND", "UNAUTHENTICATED"} & set(error_codes(body)), body
    else:
        assert error_codes(body) == ["FORBIDDEN"], body
        assert body["data"] is None


async def test_a_viewer_reads_everything_of_its_project(gql: GraphQL, services: Services) -> None:
    run_id = await Project(gql, services, await issue_key(services, "alpha")).run()
    viewer = gql.as_key((await issue_key(services, "alpha", Role.VIEWER)).secret)
    data = await viewer.data(
        """query($id: ID!) { run(id: $id) { id status project { name } workflow { name }
             metrics(key: "loss") { total } latestMetrics { key } checkpoints { id } }
           runs { edges { node { id } } } workflows { edges { node { id } } } }""",
        {"id": run_id},
    )
    assert data["run"]["project"]["name"] == "alpha" and data["runs"]["edges"]
    # The fleet-wide pool (every project's queue depth, the executors and their devices) is the
    # operator's: admin keys only.
    assert error_codes(await viewer("{ executorPool { workers } }")) == ["FORBIDDEN"]
    assert (await gql.data("{ executorPool { workers } }"))["executorPool"]["workers"] >= 0


# --- API keys -----------------------------------------------------------------------------------------


async def test_keys_are_high_entropy_prefixed_and_stored_only_as_a_hash(
    gql: GraphQL, services: Services
) -> None:
    issued = (
        await gql.data(
            "mutation($p: ID!) { createApiKey(projectId: $p, role: MEMBER) { id secret apiKey { prefix } } }",
            {"p": (await gql.data("{ viewer { projects { id } } }"))["viewer"]["projects"][0]["id"]},
        )
    )["createApiKey"]
    secret = issued["secret"]
    assert re.fullmatch(r"ptw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", secret)  # 256 random bits after the prefix
    async with services.database.uow_factory()() as uow:
        found = await uow.api_keys.get_for_auth(issued["apiKey"]["prefix"])
    stored = found[0] if found else None
    assert stored is not None and stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(stored)
    # Shown once: no type of the schema but NewApiKey has a secret.
    types = await gql.data('{ __type(name: "ApiKey") { fields { name } } }')
    assert "secret" not in {f["name"] for f in types["__type"]["fields"]}


async def test_node_resolves_an_api_key_for_itself_and_its_projects_admins_only(
    gql: GraphQL, services: Services, admin: Key
) -> None:
    member = await issue_key(services, "alpha", Role.MEMBER)
    other_member = await issue_key(services, "alpha", Role.MEMBER)
    key_id = encode_id("ApiKey", member.key_id)
    await gql.as_key(member.secret).data("{ viewer { id } }")  # stamps lastUsedAt
    seen_by_admin = (await gql.data(KEY_NODE, {"id": key_id}))["node"]
    assert seen_by_admin["id"] == key_id and seen_by_admin["lastUsedAt"] is not None
    seen_by_itself = (await gql.as_key(member.secret).data(KEY_NODE, {"id": key_id}))["node"]
    assert seen_by_itself["id"] == key_id
    assert (await gql.as_key(other_member.secret).data(KEY_NODE, {"id": key_id}))["node"] is None


async def test_a_key_that_lost_a_role_may_not_go_on(services: Services) -> None:
    key = await issue_key(services, "alpha", Role.ADMIN)
    actor = await services.access.authenticate(key.secret)
    assert await services.access.still_allowed(actor, key.secret)
    async with services.database.uow_factory()() as uow:
        await uow.api_keys.add_membership(Membership(key.key_id, key.project_id, Role.VIEWER))
        await uow.commit()
    assert not await services.access.still_allowed(actor, key.secret)


async def test_a_revoked_key_is_refused_at_once_and_its_websockets_end_at_once(
    gql: GraphQL, services: Services, ws_connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ptw.api.view.KEY_RECHECK_SECONDS", 3600.0)  # only the KeyRevoked event can end it
    run_id = await Project(gql, services, await issue_key(services, "alpha")).run()
    watcher = await issue_key(services, "alpha", Role.VIEWER)
    async with ws_connect() as socket:
        ws = TransportWs(socket)
        await ws.init({"authorization": f"Bearer {watcher.secret}"})
        await ws.subscribe("1", "subscription($id: ID!) { runEvents(runId: $id) { status } }", {"id": run_id})
        assert (await ws.receive())["type"] == "next"
        await gql.data(REVOKE, {"id": encode_id("ApiKey", watcher.key_id)})
        assert (await gql.as_key(watcher.secret).post("{ viewer { id } }")).status_code == 401
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.receive(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_secrets_never_reach_the_logs(
    gql: GraphQL, admin: Key, ws_connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forged = "ptw_0123456789ab_" + "x" * 43
    issued = await gql.data(
        "mutation($p: ID!) { createApiKey(projectId: $p, role: VIEWER) { secret } }",
        {"p": encode_id("Project", admin.project_id)},
    )
    secret = issued["createApiKey"]["secret"]
    assert (await gql.as_key(forged).post("{ viewer { id } }")).status_code == 401
    await gql.as_key(secret).data("{ viewer { id } }")
    async with ws_connect() as socket:
        with pytest.raises(websockets.ConnectionClosed):
            await TransportWs(socket).init({"authorization": f"Bearer {forged}"})
    assert caplog.records  # something was logged, and none of it is a secret
    for leaked in (secret, forged, admin.secret, secret.rsplit("_", 1)[1]):
        assert leaked not in caplog.text


START_OPTIMIZATION = (
    """mutation($input: StartOptimizationInput!) { startOptimization(input: $input) { id } }"""
)


async def test_optimizations_are_scoped_to_their_project_and_cancelled_by_members(
    tenants: tuple[Tenant, Tenant],
) -> None:
    alpha, beta = tenants
    space = {"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}}
    body = await alpha.gql(
        START_OPTIMIZATION,
        {
            "input": {
                "workflowId": await builtin(alpha.gql),
                "kind": "HYPERPARAMETER_SEARCH",
                "objective": "val_loss",
                "space": space,
                "maxTrials": 1,
            }
        },
    )
    if body.get("errors"):
        pytest.skip(f"optimizations cannot start in this version: {body['errors'][0]['message']}")
    optimization = body["data"]["startOptimization"]["id"]
    cancel = "mutation($id: ID!) { cancelOptimization(id: $id) { id } }"
    reads = ("query($id: ID!) { optimization(id: $id) { id } }", "query($id: ID!) { node(id: $id) { id } }")
    for query in (*reads, cancel):
        absent_id = missing("Optimization")
        hidden, absent = await beta.gql(query, {"id": optimization}), await beta.gql(query, {"id": absent_id})
        assert normalised(hidden, optimization) == normalised(absent, absent_id), query
    viewer = alpha.gql.as_key(alpha.viewer.secret)
    assert error_codes(await viewer(cancel, {"id": optimization})) == ["FORBIDDEN"]
    assert not (await alpha.gql(cancel, {"id": optimization})).get("errors")
