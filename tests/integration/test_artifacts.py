"""Checkpoints in the artifact stores: a local directory and an S3 bucket (moto's server over real HTTP),
plain or sealed with AES-GCM, through a real RunContext and through real executor children."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import torch
from moto.server import ThreadedMotoServer
from pydantic import SecretStr, ValidationError

from ptw.api.app import create_app
from ptw.api.ids import encode_id
from ptw.domain.runs import RunStatus
from ptw.domain.tenancy import Actor, Role
from ptw.executors import protocol
from ptw.executors.artifacts import ArtifactStore, ArtifactStoreError, LocalStore, checkpoint_path, store_for
from ptw.executors.artifacts.crypto import MAGIC, CheckpointSealError, parse_key
from ptw.executors.artifacts.s3 import S3Store
from ptw.executors.pool import LocalExecutorPool
from ptw.executors.sdk import MessageChannel, RunContext
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.settings import Settings
from tests.fixtures.graphql_client import GraphQL
from tests.fixtures.runs import finished, start_run, wait_for
from tests.unit.test_sdk import Sink

REPO = Path(__file__).resolve().parents[2]
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 as a real HTTP server on a free port of 127.0.0.1, for this module's tests."""
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


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"ptw-{secrets.token_hex(6)}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def key() -> bytes:
    return secrets.token_bytes(32)


StoreFactory = Callable[..., ArtifactStore]


@pytest.fixture(params=["local", "s3"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A store of either kind; every call with the same kind sees the same objects."""
    if request.param == "local":
        return lambda key=None: LocalStore(tmp_path / "artifacts", key)
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("bucket")
    return lambda key=None: store_for(f"s3://{bucket}/checkpoints", key, endpoint_url=endpoint)


def context(store: ArtifactStore, sink: Sink, **overrides: Any) -> RunContext:
    options: dict[str, Any] = {
        "run_id": "run-1",
        "attempt": 1,
        "params": {},
        "device": torch.device("cpu"),
        "artifacts": store,
        "channel": MessageChannel(sink),
        "flush_interval": 60.0,
    }
    return RunContext(**{**options, **overrides})


def stored_bytes(store: ArtifactStore, uri: str) -> bytes:
    if isinstance(store, S3Store):
        bucket, _, name = uri.removeprefix("s3://").partition("/")
        return store.client.get_object(Bucket=bucket, Key=name)["Body"].read()  # type: ignore[no-any-return]
    return checkpoint_path(uri).read_bytes()


def replace_bytes(store: ArtifactStore, uri: str, data: bytes) -> None:
    if isinstance(store, S3Store):
        bucket, _, name = uri.removeprefix("s3://").partition("/")
        store.client.put_object(Bucket=bucket, Key=name, Body=data)
    else:
        checkpoint_path(uri).write_bytes(data)


def stored_names(store: ArtifactStore) -> list[str]:
    if isinstance(store, S3Store):
        listed = store.client.list_objects_v2(Bucket=store.bucket).get("Contents", [])
        return sorted(item["Key"].rsplit("/", 1)[-1] for item in listed)
    return sorted(p.name for p in Path(checkpoint_path(store.url)).rglob("*") if p.is_file())


def model_state() -> dict[str, Any]:
    torch.manual_seed(0)
    return {"model": torch.nn.Linear(4, 3).state_dict(), "step": 7}


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "sealed"])
def test_a_checkpoint_round_trips_and_the_next_attempt_resumes_from_it(
    make_store: StoreFactory, key: bytes, encrypted: bool
) -> None:
    store = make_store(key if encrypted else None)
    sink = Sink()
    ctx = context(store, sink)
    assert ctx.load_checkpoint() is None
    state = model_state()
    ctx.save_checkpoint(state, step=7)
    ctx.close()
    [message] = sink.messages(protocol.CHECKPOINT)
    uri = message.uri
    assert uri.startswith("s3://" if isinstance(store, S3Store) else "file:///")
    assert uri.endswith("/run-1/a1-s7.pt") and message.step == 7
    raw = stored_bytes(store, uri)
    assert message.size == len(raw)
    # A torch checkpoint is a zip file; sealed, nothing of it is readable.
    assert raw.startswith(MAGIC if encrypted else b"PK")
    assert (state["model"]["weight"].numpy().tobytes() in raw) is not encrypted

    loaded = ctx.load_checkpoint()
    assert torch.equal(loaded["model"]["weight"], state["model"]["weight"]) and loaded["step"] == 7

    # Another worker with the same configuration, on attempt 2, given the URI at claim.
    later = context(make_store(key if encrypted else None), Sink(), attempt=2, checkpoint_uri=uri)
    resumed = later.load_checkpoint()
    later.close()
    assert torch.equal(resumed["model"]["bias"], state["model"]["bias"])


def test_a_failed_save_stores_and_reports_nothing(make_store: StoreFactory, key: bytes) -> None:
    for store in (make_store(), make_store(key)):
        sink = Sink()
        ctx = context(store, sink, run_id=f"run-{store.encrypted}")
        ctx.save_checkpoint({"step": 1}, step=1)
        before = stored_names(store)
        with pytest.raises(Exception, match=r"pickle|local object"):
            ctx.save_checkpoint({"step": 2, "bad": lambda: None}, step=2)
        ctx.close()
        assert stored_names(store) == before  # no partial object, no temporary file
        assert [m.step for m in sink.messages(protocol.CHECKPOINT)] == [1]
        assert ctx.load_checkpoint() == {"step": 1}


def test_an_interrupted_multipart_upload_leaves_no_object(s3_endpoint: str, bucket: str) -> None:
    store = S3Store(f"s3://{bucket}/big", endpoint_url=s3_endpoint)
    state = {"w": torch.zeros(5_000_000)}  # 20 MB: boto3 uploads it in 8 MB parts
    parts = 0

    def fail_the_second_part(**_: Any) -> None:
        nonlocal parts
        parts += 1
        if parts == 2:
            raise ConnectionError("the network went away")

    store.client.meta.events.register("before-call.s3.UploadPart", fail_the_second_part)
    sink = Sink()
    ctx = context(store, sink)
    with pytest.raises(ArtifactStoreError, match="cannot upload s3://"):
        ctx.save_checkpoint(state, step=1)
    assert parts >= 2
    assert store.client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert not store.client.list_multipart_uploads(Bucket=bucket).get("Uploads")  # aborted, not left
    assert ctx.load_checkpoint() is None

    store.client.meta.events.unregister("before-call.s3.UploadPart", fail_the_second_part)
    ctx.save_checkpoint(state, step=2)
    ctx.close()
    [message] = sink.messages(protocol.CHECKPOINT)
    assert message.size > 20_000_000 and torch.equal(ctx.load_checkpoint()["w"], state["w"])


def test_a_missing_bucket_fails_the_save_with_a_clear_error(s3_endpoint: str) -> None:
    store = S3Store("s3://no-such-bucket/x", endpoint_url=s3_endpoint)
    sink = Sink()
    ctx = context(store, sink)
    with pytest.raises(ArtifactStoreError, match="no-such-bucket"):
        ctx.save_checkpoint({"a": 1}, step=1)
    ctx.close()
    assert sink.messages(protocol.CHECKPOINT) == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with store.open("s3://no-such-bucket/x/run-1/a1-s1.pt"):
            pass


def saved(store: ArtifactStore, state: Any) -> str:
    sink = Sink()
    ctx = context(store, sink)
    ctx.save_checkpoint(state, step=1)
    ctx.close()
    return str(sink.messages(protocol.CHECKPOINT)[0].uri)


def load(store: ArtifactStore, uri: str) -> Any:
    ctx = context(store, Sink(), attempt=2, checkpoint_uri=uri)
    try:
        return ctx.load_checkpoint()
    finally:
        ctx.close()


def test_a_wrong_key_is_refused(make_store: StoreFactory, key: bytes) -> None:
    uri = saved(make_store(key), model_state())
    with pytest.raises(CheckpointSealError, match="the key is wrong or the object was altered"):
        load(make_store(secrets.token_bytes(32)), uri)
    with pytest.raises(CheckpointSealError, match="is encrypted; set PTW_CHECKPOINT_KEY"):
        load(make_store(None), uri)


@pytest.mark.parametrize("where", ["header", "body", "tag"])
def test_an_altered_checkpoint_is_detected(make_store: StoreFactory, key: bytes, where: str) -> None:
    store = make_store(key)
    uri = saved(store, model_state())
    data = bytearray(stored_bytes(store, uri))
    index = {"header": 8, "body": len(data) // 2, "tag": len(data) - 1}[where]  # 8: inside the nonce
    data[index] ^= 0x01
    replace_bytes(store, uri, bytes(data))
    with pytest.raises(CheckpointSealError, match="failed authentication"):
        load(store, uri)
    replace_bytes(store, uri, bytes(data[:10]))
    with pytest.raises(CheckpointSealError, match="truncated"):
        load(store, uri)


def test_an_unencrypted_object_is_refused_when_a_key_is_set(make_store: StoreFactory, key: bytes) -> None:
    uri = saved(make_store(None), {"a": 1})
    with pytest.raises(CheckpointSealError, match="not encrypted, but PTW_CHECKPOINT_KEY is set"):
        load(make_store(key), uri)


def test_every_object_gets_its_own_nonce(tmp_path: Path, key: bytes) -> None:
    store = LocalStore(tmp_path, key)
    first = store.save("r/a.pt", lambda f: f.write(b"same"))
    second = store.save("r/b.pt", lambda f: f.write(b"same"))
    one, two = (checkpoint_path(a.uri).read_bytes() for a in (first, second))
    assert one[4:5] == b"\x01" and one[5:17] != two[5:17] and one[17:] != two[17:]
    with store.open(first.uri) as f:
        assert f.read() == b"same"


def test_keys_are_256_bits_in_hex_or_base64() -> None:
    raw = secrets.token_bytes(32)
    import base64

    assert parse_key(raw.hex()) == raw
    assert parse_key(base64.b64encode(raw).decode()) == raw
    assert parse_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    for bad in ("", "abc", secrets.token_hex(16), secrets.token_hex(33), "z" * 64):
        with pytest.raises(ValueError, match="256 bits"):
            parse_key(bad)


def test_store_urls(tmp_path: Path, s3_endpoint: str) -> None:
    assert isinstance(store_for(tmp_path.as_uri()), LocalStore)
    assert store_for(str(tmp_path)).url == tmp_path.resolve().as_uri()
    s3_store = store_for("s3://bucket/some/prefix/", endpoint_url=s3_endpoint)
    assert isinstance(s3_store, S3Store) and (s3_store.bucket, s3_store.prefix) == ("bucket", "some/prefix")
    with pytest.raises(ValueError, match="unsupported artifacts URL"):
        store_for("gs://bucket/x")
    with pytest.raises(ValueError, match="cannot read 's3://b/k'"):
        with LocalStore(tmp_path).open("s3://b/k"):
            pass


def test_settings_check_the_key_and_pass_the_store_to_runners(tmp_path: Path) -> None:
    hex_key = secrets.token_hex(32)
    settings = Settings(
        data_dir=tmp_path,
        artifacts_url="s3://bucket/ptw",
        s3_endpoint_url="http://127.0.0.1:9000",
        checkpoint_key=SecretStr(hex_key),
    )
    assert hex_key not in repr(settings) and hex_key not in str(settings.model_dump())
    assert settings.runner_env() == {
        "PTW_ARTIFACTS_URL": "s3://bucket/ptw",
        "PTW_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "PTW_CHECKPOINT_KEY": hex_key,
    }
    assert Settings(data_dir=tmp_path).runner_env() == {
        "PTW_ARTIFACTS_URL": (tmp_path / "artifacts").as_uri()
    }
    with pytest.raises(ValidationError, match="256 bits"):
        Settings(data_dir=tmp_path, checkpoint_key=SecretStr("too-short"))
    with pytest.raises(ValidationError, match="s3://bucket/prefix"):
        Settings(data_dir=tmp_path, artifacts_url="relative/dir")


# -- through real executor children -------------------------------------------------------------


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    services = await bootstrap(Settings(data_dir=tmp_path, executors=0), migrate=True)
    yield services
    await services.aclose()


async def test_a_run_checkpointed_on_one_worker_resumes_on_another_from_the_bucket(
    services: Services, tmp_path: Path, s3_endpoint: str, s3: Any, bucket: str
) -> None:
    issued = await services.access.bootstrap_key("artifacts", Role.ADMIN)
    actor: Actor = await services.access.authenticate(issued.secret)
    worker_settings = Settings(
        data_dir=tmp_path,
        artifacts_url=f"s3://{bucket}/runs",
        s3_endpoint_url=s3_endpoint,
        checkpoint_key=SecretStr(secrets.token_hex(32)),
    )
    env = {**AWS_ENV, **worker_settings.runner_env(), "PYTHONPATH": str(REPO)}

    def pool(local_dir: Path) -> LocalExecutorPool:
        # Each "worker" has its own local directory: only the bucket is shared.
        return LocalExecutorPool(
            services.execution,
            services.metrics,
            services.bus,
            services.queue,
            services.registry,
            local_dir,
            slots=1,
            env=env,
        )

    run = await start_run(services, actor, "checkpoints")
    first = pool(tmp_path / "worker-a")
    await first.start()
    try:
        await wait_for(services, actor, run.id, lambda r: r.status is RunStatus.RUNNING, within=30)
        deadline = time.monotonic() + 15
        while not (checkpoints := await services.runs.checkpoints(actor, run.id)):
            assert time.monotonic() < deadline, "no checkpoint was recorded"
            await asyncio.sleep(0.05)
    finally:
        interrupted = await first.stop(grace=3)  # the worker is lost mid-run
    [checkpoint] = checkpoints
    assert checkpoint.uri == f"s3://{bucket}/runs/{run.id}/a1-s5.pt"
    body = s3.get_object(Bucket=bucket, Key=f"runs/{run.id}/a1-s5.pt")["Body"].read()
    assert checkpoint.size_bytes == len(body) and body.startswith(MAGIC)
    assert not any(p.is_file() for p in (tmp_path / "worker-a").rglob("*"))

    await services.recovery.recover_lost(interrupted, "executor stopped")
    second = pool(tmp_path / "worker-b")
    await second.start()
    try:
        run = await finished(services, actor, run.id)
    finally:
        await second.stop(grace=3)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.summary == {"resumed_step": 5, "weights": [0.0, 1.0, 2.0], "attempt": 2}

    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://ptw.test") as http:
        data = await GraphQL(http, issued.secret).data(
            "query($id: ID!) { run(id: $id) { checkpoints { attempt step uri sizeBytes } } }",
            {"id": encode_id("Run", run.id)},
        )
    assert data["run"]["checkpoints"] == [
        {"attempt": 1, "step": 5, "uri": checkpoint.uri, "sizeBytes": len(body)}
    ]


async def test_a_runner_with_a_bad_key_never_takes_a_job(tmp_path: Path) -> None:
    from ptw.executors.warm_runner import RunnerFailed, WarmRunner

    runner = await WarmRunner.start(
        tmp_path, env={"PYTHONPATH": str(REPO), "PTW_CHECKPOINT_KEY": "not-a-key"}
    )
    with pytest.raises(RunnerFailed, match="256 bits"):
        await runner.ready(within=60)


def test_the_sdk_reads_checkpoints_of_a_shared_filesystem_from_an_s3_worker(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    uri = saved(LocalStore(tmp_path / "shared"), {"a": torch.ones(2)})
    state = load(S3Store(f"s3://{bucket}", endpoint_url=s3_endpoint), uri)
    assert torch.equal(state["a"], torch.ones(2))
    assert os.path.exists(checkpoint_path(uri))
