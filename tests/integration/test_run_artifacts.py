"""Artifacts of runs on PostgreSQL with real executors, in a local directory and in an S3 bucket (moto's
server over real HTTP, sealed with a key): retention keeps the last N and the best checkpoint and deletes
the others' files, saved files are listed, everything downloads over authorized HTTP, and deleting a run
deletes its artifacts."""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import httpx
import pytest
import torch
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from ptw.api.app import create_app
from ptw.api.ids import encode_id
from ptw.domain.artifacts import Retention
from ptw.domain.optimizations import Direction
from ptw.domain.runs import RunStatus
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Actor, Role
from ptw.executors.pool import LocalExecutorPool
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.settings import Settings
from tests.fixtures.databases import fresh_postgres_url
from tests.fixtures.graphql_client import GraphQL
from tests.fixtures.runs import finished

REPO = Path(__file__).resolve().parents[2]
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
ARTIFACTS = """query($id: ID!) { run(id: $id) {
  artifacts { id name kind step sizeBytes createdAt downloadUrl }
  checkpoints { step }
} }"""
DELETE = "mutation($id: ID!) { deleteRun(id: $id) }"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AWS_ENV.items():
            patch.setenv(name, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    if request.param == "local":
        return Settings(data_dir=tmp_path, executors=0)
    endpoint = request.getfixturevalue("s3_endpoint")
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    bucket = f"ptw-{secrets.token_hex(6)}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return Settings(
        data_dir=tmp_path,
        executors=0,
        artifacts_url=f"s3://{bucket}/runs",
        s3_endpoint_url=endpoint,
        checkpoint_key=SecretStr(secrets.token_hex(32)),
    )


@pytest.fixture
async def services(settings: Settings, tmp_path: Path) -> AsyncIterator[Services]:
    async with fresh_postgres_url() as url:
        services = await bootstrap(settings.model_copy(update={"database_url": url}), migrate=True)
        pool = LocalExecutorPool(
            services.execution,
            services.metrics,
            services.bus,
            services.local_queue,
            services.registry,
            tmp_path / "local-artifacts",
            slots=1,
            env={**AWS_ENV, **settings.runner_env(), "PYTHONPATH": str(REPO)},
        )
        await pool.start()
        try:
            yield services
        finally:
            await pool.stop(grace=3)
            await services.aclose()


async def key_of(services: Services, project: str) -> tuple[str, Actor]:
    issued = await services.access.bootstrap_key(project, Role.ADMIN)
    return issued.secret, await services.access.authenticate(issued.secret)


def stored_objects(services: Services) -> list[str]:
    """Every object name in the store, as ``<run>/<name>``."""
    store = services.artifacts.files.store  # type: ignore[union-attr]
    client = getattr(store, "client", None)
    if client is not None:
        listed = client.list_objects_v2(Bucket=store.bucket).get("Contents", [])
        return sorted(item["Key"].removeprefix(f"{store.prefix}/") for item in listed)
    root = Path(store.root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_retention_keeps_the_last_and_the_best_and_everything_downloads(services: Services) -> None:
    secret, actor = await key_of(services, "artifacts")
    other_secret, _ = await key_of(services, "elsewhere")
    spec = WorkflowSpec(name="keeps", entrypoint="tests.workflows.artifacts:keeps")
    kept = Retention(keep_last=2, best_by="loss", direction=Direction.MINIMIZE)
    workflow = await services.workflows.register(actor, None, spec, kept)
    run = await services.runs.start_run(actor, workflow.id, params={"steps": 8, "best": 2})
    run = await finished(services, actor, run.id, within=60)
    assert run.status is RunStatus.SUCCEEDED, run.error

    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://ptw.test") as http:
        data = (await GraphQL(http, secret).data(ARTIFACTS, {"id": encode_id("Run", run.id)}))["run"]
        artifacts = {a["name"]: a for a in data["artifacts"]}
        assert sorted(artifacts) == ["a1-s2.pt", "a1-s6.pt", "a1-s7.pt", "notes.txt", "table.csv"]
        assert [c["step"] for c in data["checkpoints"]] == [2, 6, 7]
        assert artifacts["notes.txt"]["kind"] == "file" and artifacts["a1-s2.pt"]["kind"] == "checkpoint"
        # The deleted checkpoints' files are gone from the store, not only from the list.
        assert stored_objects(services) == sorted(
            f"{run.id}/{n}"
            for n in ("a1-s2.pt", "a1-s6.pt", "a1-s7.pt", "files/notes.txt", "files/table.csv")
        )

        best = await http.get(
            artifacts["a1-s2.pt"]["downloadUrl"], headers={"Authorization": f"Bearer {secret}"}
        )
        assert best.status_code == 200, best.text
        assert torch.load(io.BytesIO(best.content)) == {"step": 2}  # decrypted when the store seals
        notes = await http.get(
            artifacts["notes.txt"]["downloadUrl"], headers={"Authorization": f"Bearer {secret}"}
        )
        assert notes.content == b"what this run learned\n"
        assert 'filename="notes.txt"' in notes.headers["content-disposition"]
        table = await http.get(
            artifacts["table.csv"]["downloadUrl"], headers={"Authorization": f"Bearer {secret}"}
        )
        assert table.text.splitlines()[:2] == ["step,loss", "0,2"]

        node = "query($id: ID!) { node(id: $id) { ... on Artifact { name downloadUrl } } }"
        notes_id = {"id": artifacts["notes.txt"]["id"]}
        found = (await GraphQL(http, secret).data(node, notes_id))["node"]
        assert found == {"name": "notes.txt", "downloadUrl": artifacts["notes.txt"]["downloadUrl"]}
        assert (await GraphQL(http, other_secret).data(node, notes_id))["node"] is None

        url = artifacts["notes.txt"]["downloadUrl"]
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url, headers={"Authorization": "Bearer nope"})).status_code == 401
        foreign = await http.get(url, headers={"Authorization": f"Bearer {other_secret}"})
        assert foreign.status_code == 404  # another project's artifact looks missing
        assert (await http.get(url + "x", headers={"Authorization": f"Bearer {secret}"})).status_code == 404

        await GraphQL(http, secret).data(DELETE, {"id": encode_id("Run", run.id)})
        assert stored_objects(services) == []
        gone = await http.get(url, headers={"Authorization": f"Bearer {secret}"})
        assert gone.status_code == 404
        after = await GraphQL(http, secret)(ARTIFACTS, {"id": encode_id("Run", run.id)})
        assert after["data"]["run"] is None or after["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_workflow_without_a_retention_keeps_the_last_three(services: Services) -> None:
    _, actor = await key_of(services, "defaults")
    spec = WorkflowSpec(name="keeps", entrypoint="tests.workflows.artifacts:keeps")
    workflow = await services.workflows.register(actor, None, spec)
    run = await services.runs.start_run(actor, workflow.id, params={"steps": 6})
    run = await finished(services, actor, run.id, within=60)
    assert run.status is RunStatus.SUCCEEDED, run.error
    checkpoints = await services.runs.checkpoints(actor, run.id)
    assert [c.step for c in checkpoints if c.kind == "checkpoint"] == [3, 4, 5]
    assert len([n for n in stored_objects(services) if n.endswith(".pt")]) == 3


async def test_a_run_still_going_is_not_deleted(services: Services) -> None:
    secret, actor = await key_of(services, "busy")
    spec = WorkflowSpec(name="keeps", entrypoint="tests.workflows.artifacts:keeps")
    workflow = await services.workflows.register(actor, None, spec)
    run = await services.runs.start_run(actor, workflow.id, params={"steps": 50})
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://ptw.test") as http:
        answer = await GraphQL(http, secret)(DELETE, {"id": encode_id("Run", run.id)})
    assert answer["errors"][0]["extensions"]["code"] == "CONFLICT"
    await services.runs.cancel_run(actor, run.id)
