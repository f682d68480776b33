"""Security end to end, as an operator would check it: two projects with their own keys against two
production-mode replicas (`PTW_ENV=production`, PostgreSQL, Redis). The other tenant's run cannot be read,
listed, cancelled, logged into or subscribed to; forged and missing keys are refused; a viewer cannot
start runs; a revoked key stops at once on every replica; hostile documents and bodies are refused while
the server goes on answering; rate limits are shared by the replicas; and `ptw serve` speaks TLS."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ptw.api.ids import encode_id
from ptw.client import GraphQLClient, GraphQLError
from tests.e2e.conftest import REPO, Production, Server, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

START = "mutation($input: StartRunInput!) { startRun(input: $input) { id status } }"
RUN = "query($id: ID!) { run(id: $id) { id status metricKeys } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"
LOG = 'mutation($id: ID!) { logMetrics(runId: $id, points: [{key: "loss", step: 1, value: 1.0}]) }'
CANCEL = "mutation($id: ID!) { cancelRun(id: $id) { id status } }"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MISSING_RUN = encode_id("Run", "00000000-0000-4000-8000-000000000000")


@pytest.fixture(scope="module")
def replicas(production: Production) -> Iterator[tuple[Server, Server]]:
    env = {**production.env, "PTW_ENV": "production"}
    first = Server(production.data_dir, executors=0, env=env, key=production.key, log_name="secure-a.log")
    production.processes.append(first)
    second = Server(production.data_dir, executors=0, env=env, key=production.key, log_name="secure-b.log")
    production.processes.append(second)
    yield first, second


@pytest.fixture(scope="module")
def beta_key(production: Production) -> str:
    return production.cli("keys", "create", "--project", "beta").strip().splitlines()[-1]


async def codes(client: GraphQLClient, query: str, variables: dict[str, Any]) -> tuple[str | None, str]:
    with pytest.raises(GraphQLError) as caught:
        await client.execute(query, variables)
    return caught.value.code, UUID.sub("<uuid>", str(caught.value))


async def started_run(client: GraphQLClient) -> str:
    workflow = (await client.execute('{ workflow(name: "digits-mlp") { id } }'))["workflow"]["id"]
    run = await client.execute(START, {"input": {"workflowId": workflow, "params": {"epochs": 1}}})
    return str(run["startRun"]["id"])


async def test_forged_and_missing_keys_are_refused(replicas: tuple[Server, Server]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for replica in replicas:
            for headers in ({}, {"Authorization": "Bearer ptw_0123456789ab_forgedforgedforged"}):
                response = await http.post(
                    f"{replica.url}/graphql", json={"query": "{ viewer { id } }"}, headers=headers
                )
                assert response.status_code == 401
                assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_other_tenants_run_is_missing_on_every_path(
    replicas: tuple[Server, Server], beta_key: str
) -> None:
    a, b = replicas
    alpha, beta = a.client(), b.client(beta_key)
    run_id = await started_run(alpha)
    await alpha.execute(LOG, {"id": run_id})
    # Production stores logged points through the ingester, a moment after logMetrics answers.
    deadline = time.monotonic() + 30
    while (await alpha.execute(RUN, {"id": run_id}))["run"]["metricKeys"] != ["loss"]:  # then cached in Redis
        assert time.monotonic() < deadline, "the logged points were never stored"
        await asyncio.sleep(0.1)
    for query in (RUN, CANCEL, LOG):
        hidden, missing = (
            await codes(beta, query, {"id": run_id}),
            await codes(beta, query, {"id": MISSING_RUN}),
        )
        assert hidden[0] == missing[0] == "NOT_FOUND"
        assert hidden[1] == missing[1]
    assert (await beta.execute(NODE, {"id": run_id}))["node"] is None
    listed = await beta.execute(
        "{ runs(first: 1000) { edges { node { id } } } "
        'workflow(name: "digits-mlp") { runs { edges { node { id } } } } }'
    )
    assert run_id not in json.dumps(listed)
    for subscription in (
        "subscription($id: ID!) { runMetrics(runId: $id) { cursor } }",
        "subscription($id: ID!) { runEvents(runId: $id) { status } }",
    ):
        with pytest.raises(GraphQLError) as caught:
            await anext(beta.subscribe(subscription, {"id": run_id}))
        assert caught.value.code == "NOT_FOUND"
    after = (await alpha.execute(RUN, {"id": run_id}))["run"]
    assert after["status"] == "QUEUED" and after["metricKeys"] == [
        "loss"
    ]  # neither cancelled nor logged into


async def test_a_viewer_cannot_start_runs(replicas: tuple[Server, Server]) -> None:
    a, b = replicas
    project = (await a.client().execute("{ viewer { projects { id name } } }"))["viewer"]["projects"][0]["id"]
    issued = await a.client().execute(
        "mutation($p: ID!) { createApiKey(projectId: $p, role: VIEWER) { secret } }", {"p": project}
    )
    viewer = b.client(issued["createApiKey"]["secret"])
    with pytest.raises(GraphQLError) as caught:
        await started_run(viewer)
    assert caught.value.code == "FORBIDDEN"


async def test_a_revoked_key_stops_at_once_on_every_replica(replicas: tuple[Server, Server]) -> None:
    a, b = replicas
    project = (await a.client().execute("{ viewer { projects { id } } }"))["viewer"]["projects"][0]["id"]
    issued = (
        await a.client().execute(
            "mutation($p: ID!) { createApiKey(projectId: $p, role: MEMBER) { id secret } }", {"p": project}
        )
    )["createApiKey"]
    run_id = await started_run(a.client())
    ws_url = "ws" + b.url.removeprefix("http") + "/graphql"
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {issued['secret']}"}}
        await socket.send(json.dumps(init))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        query = "subscription($id: ID!) { runEvents(runId: $id) { status } }"
        await socket.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"id": run_id}}}
            )
        )
        assert json.loads(await socket.recv())["type"] == "next"
        await a.client().execute(
            "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }", {"id": issued["id"]}
        )
        with pytest.raises(GraphQLError) as caught:
            await b.client(issued["secret"]).execute("{ viewer { id } }")
        assert caught.value.code == "UNAUTHENTICATED"
        # Ended by the KeyRevoked event through Redis, long before the 30 s re-check.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(socket.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_hostile_documents_are_refused_and_the_server_goes_on(replicas: tuple[Server, Server]) -> None:
    a, _ = replicas
    headers = {"Authorization": f"Bearer {a.key}"}
    deep = "{ runs { edges { node { id } } } }"
    for _ in range(4):
        deep = deep.replace("node { id }", "node { workflow { runs { edges { node { id } } } } }")
    aliased = "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(200)) + " }"
    costly = "{ workflows(first: 1000) { edges { node { runs(first: 1000) { edges { node { id } } } } } } }"
    async with httpx.AsyncClient(base_url=a.url, timeout=60) as http:
        for document in (deep, aliased, costly, "{ __schema { types { name } } }", "{ viewr { id } }"):
            body = (await http.post("/graphql", json={"query": document}, headers=headers)).json()
            assert body["errors"] and not body.get("data"), body
            assert "Did you mean" not in json.dumps(body)
        huge = json.dumps({"query": "{ viewer { id } }", "variables": {"pad": "x" * 20_000_000}})
        oversized = await http.post(
            "/graphql", content=huge, headers={**headers, "Content-Type": "application/json"}
        )
        assert oversized.status_code == 413
        assert (await http.get("/graphql", headers={"Accept": "text/html"})).status_code == 404  # no GraphiQL
    client = a.client()
    page = await client.execute("{ runs(first: 1000000) { pageInfo { hasNextPage } } }")
    assert "runs" in page
    workflow = (await client.execute('{ workflow(name: "digits-mlp") { id } }'))["workflow"]["id"]
    with pytest.raises(GraphQLError) as caught:
        await client.execute(START, {"input": {"workflowId": workflow, "params": {"epochs": "many"}}})
    assert caught.value.code == "BAD_USER_INPUT"
    assert (await client.execute("{ viewer { id } }"))["viewer"]["id"]


async def test_rate_limits_are_shared_by_the_replicas(production: Production) -> None:
    env = {**production.env, "PTW_RATE_LIMIT": "0.5", "PTW_RATE_LIMIT_BURST": "4"}
    servers = [
        Server(production.data_dir, executors=0, env=env, key=production.key, log_name=f"limited-{i}.log")
        for i in range(2)
    ]
    production.processes.extend(servers)
    key = production.cli("keys", "create", "--project", "limited").strip().splitlines()[-1]
    statuses = []
    async with httpx.AsyncClient(timeout=10) as http:
        for i in range(6):
            response = await http.post(
                f"{servers[i % 2].url}/graphql",
                json={"query": "{ viewer { id } }"},
                headers={"Authorization": f"Bearer {key}"},
            )
            statuses.append(response.status_code)
    assert statuses[:4] == [200] * 4 and statuses[4:] == [429, 429]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["errors"][0]["extensions"]["retryAfter"] >= 1


# --- TLS ------------------------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """Embedded `ptw serve` with a self-signed certificate: (https URL, the certificate, the admin key)."""
    cert_file, key_file = self_signed(tmp_path)
    port = free_port()
    env = {**os.environ, "PTW_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    env.pop("PTW_DATABASE_URL", None)
    env.pop("PTW_REDIS_URL", None)
    command = [sys.executable, "-m", "ptw.cli", "serve", "--port", str(port), "--executors", "0"]
    command += ["--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file)]
    with open(tmp_path / "tls.log", "wb") as log:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        trusted = ssl.create_default_context(cafile=str(cert_file))
        for _ in range(150):
            try:
                if (
                    httpx.get(f"https://localhost:{port}/healthz", verify=trusted, timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield f"localhost:{port}", cert_file, (tmp_path / "admin.key").read_text().strip()
    finally:
        process.terminate()
        process.wait(15)


async def test_serve_speaks_tls_with_the_given_certificate(tls_server: tuple[str, Path, str]) -> None:
    address, cert_file, key = tls_server
    trusted = ssl.create_default_context(cafile=str(cert_file))
    async with httpx.AsyncClient(base_url=f"https://{address}", verify=trusted, timeout=5) as https:
        viewer = await https.post(
            "/graphql", json={"query": "{ viewer { id } }"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert viewer.status_code == 200 and viewer.json()["data"]["viewer"]["id"]
    async with httpx.AsyncClient(base_url=f"https://{address}", timeout=5) as untrusting:
        with pytest.raises(httpx.ConnectError):  # the system's CAs do not vouch for it
            await untrusting.get("/healthz")
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=5) as plain:
        with pytest.raises(httpx.TransportError):
            await plain.get("/healthz")
