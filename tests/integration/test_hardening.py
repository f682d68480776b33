"""Hostile documents and clients over the real app: depth, alias, token and cost limits, fragment cycles
and blow-ups, huge pages, batching, oversized bodies (declared and chunked), production's switches,
per-key rate limits (in-process and in Redis), and WebSocket protocol abuse."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from redis.asyncio import Redis
from starlette.applications import Starlette

from ptw.api.app import create_app
from ptw.api.ids import encode_id
from ptw.api.pagination import page_request
from ptw.infra.bootstrap import Services
from ptw.infra.ratelimit import LocalRateLimiter, RedisRateLimiter
from ptw.infra.settings import Settings
from tests.fixtures.graphql_client import GraphQL, Key, TransportWs, error_codes, issue_key

pytest_plugins = ["tests.fixtures.api"]

REDIS_URL = "redis://127.0.0.1:6379/0"
VIEWER = "{ viewer { id } }"


def app_with(services: Services, **settings: Any) -> Starlette:
    """The app of ``services`` under other settings (and, given ``rate_limiter``, another limiter)."""
    limiter = settings.pop("rate_limiter", services.rate_limiter)
    replaced = Settings(data_dir=services.settings.data_dir, **settings)
    return create_app(dataclasses.replace(services, settings=replaced, rate_limiter=limiter))


@asynccontextmanager
async def client(app: Starlette, key: Key) -> AsyncIterator[GraphQL]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ptw.test") as http:
        yield GraphQL(http, key.secret)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """``app`` under uvicorn on a free port; yields ``host:port``."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def nested(depth: int) -> str:
    inner = "id"
    for _ in range(depth):
        inner = f"workflow {{ runs(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}"
    return f"{{ runs(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}"


# --- documents ------------------------------------------------------------------------------------


async def test_deep_aliased_and_huge_documents_are_refused_and_the_server_goes_on(gql: GraphQL) -> None:
    aliased = "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(100)) + " }"
    huge = "{ viewer { " + " ".join(["id"] * 6000) + " } }"
    for document in (nested(6), aliased, huge):
        response = await gql.post(document)
        body = response.json()
        assert response.status_code == 200 and body.get("data") is None, body
        assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"] or "token" in str(body).lower(), body
    assert (await gql.data(VIEWER))["viewer"]["id"]


async def test_fragment_cycles_and_fragment_blowups_are_refused_quickly(gql: GraphQL) -> None:
    cycle = "{ viewer { ...A } } fragment A on Viewer { ...B } fragment B on Viewer { ...A }"
    # Each fragment spreads the next twice: 2**16 fields once expanded, from a document of a few lines.
    levels = [f"fragment F{i} on Run {{ ...F{i + 1} ...F{i + 1} }}" for i in range(16)]
    blowup = (
        "{ runs(first: 1000) { edges { node { ...F0 } } } } "
        + " ".join(levels)
        + " fragment F16 on Run { id }"
    )
    for document in (cycle, blowup):
        started = time.monotonic()
        body = await gql(document)
        assert body.get("data") is None and error_codes(body), body
        assert time.monotonic() - started < 5
    assert "cost" in str(body)


async def test_the_cost_limit_counts_pages_times_their_selections_with_variables(gql: GraphQL) -> None:
    query = """query($n: Int) { workflows(first: $n) { edges { node {
      runs(first: $n) { edges { node { id } } } } } } }"""
    refused = await gql(query, {"n": 1000})
    assert error_codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
    assert refused["errors"][0]["extensions"]["cost"] > refused["errors"][0]["extensions"]["maxCost"]
    assert (await gql.data(query, {"n": 10}))["workflows"]["edges"]
    # A full page of a dashboard is well within it.
    page = """{ runs(first: 1000) { edges { node {
      id status params workflow { name } latestMetrics { key value } } } } }"""
    assert "runs" in await gql.data(page)
    series = '{ runs(first: 1000) { edges { node { metrics(key: "loss", maxPoints: 100000) { total } } } } }'
    assert error_codes(await gql(series)) == ["GRAPHQL_VALIDATION_FAILED"]
    # A whole read (maxPoints null) is charged as the most it may load, whatever the series holds.
    whole = """query($n: Int, $m: Int) { runs(first: $n) { edges { node {
      metrics(key: "loss", maxPoints: $m) { columns } } } } }"""
    literal = whole.replace("$m: Int", "").replace("$m", "null").replace("($n: Int, )", "($n: Int)")
    assert error_codes(await gql(whole, {"n": 50, "m": None})) == ["GRAPHQL_VALIDATION_FAILED"]
    assert error_codes(await gql(literal, {"n": 50})) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "runs" in await gql.data(whole, {"n": 10, "m": None})
    assert "runs" in await gql.data(whole, {"n": 1000, "m": 50})


async def test_page_sizes_are_clamped(gql: GraphQL) -> None:
    assert page_request(10**9, None).first == 1000 and page_request(-5, None).first == 1
    data = await gql.data(
        "{ runs(first: 100000) { pageInfo { hasNextPage } } workflows(first: -1) { edges { cursor } } }"
    )
    assert len(data["workflows"]["edges"]) == 1
    workflow = (await gql.data('{ workflow(name: "digits-mlp") { id } }'))["workflow"]["id"]
    started = await gql.data(
        "mutation($w: ID!) { startRun(input: {workflowId: $w}) { id } }", {"w": workflow}
    )
    too_many = await gql(
        'query($id: ID!) { run(id: $id) { metrics(key: "x", maxPoints: 1000000) { total } } }',
        {"id": started["startRun"]["id"]},
    )
    assert error_codes(too_many) == ["BAD_USER_INPUT"]


async def test_batches_are_refused(gql: GraphQL) -> None:
    response = await gql.http.post(
        "/graphql",
        json=[{"query": VIEWER}, {"query": VIEWER}],
        headers={"Authorization": f"Bearer {gql.key}"},
    )
    assert response.status_code == 400


async def test_bodies_over_the_limit_get_413_declared_or_chunked(gql: GraphQL, live_url: str) -> None:
    headers = {"Authorization": f"Bearer {gql.key}", "Content-Type": "application/json"}
    padding = {"query": VIEWER, "variables": {"pad": "x" * (20 * 1024 * 1024)}}
    body = json.dumps(padding).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, 2 * 1024 * 1024, 64 * 1024):
            yield body[start : start + 64 * 1024]

    async with httpx.AsyncClient(base_url=f"http://{live_url}", timeout=30) as http:
        declared = await http.post("/graphql", content=body, headers=headers)
        assert declared.status_code == 413
        chunked = await http.post("/graphql", content=chunks(), headers=headers)
        assert chunked.status_code == 413
        small = json.dumps({"query": VIEWER, "variables": {"pad": "x" * 500_000}}).encode()

        async def one_chunk() -> AsyncIterator[bytes]:
            yield small

        assert (await http.post("/graphql", content=one_chunk(), headers=headers)).status_code == 200
        assert (await http.post("/graphql", json={"query": VIEWER}, headers=headers)).status_code == 200


# --- production's switches --------------------------------------------------------------------------


async def test_production_turns_off_graphiql_introspection_and_suggestions(
    services: Services, admin: Key
) -> None:
    typo = "{ viewr { id } }"
    enum_typo = 'mutation($r: Role!) { createApiKey(projectId: "x", role: $r) { secret } }'
    async with client(app_with(services), admin) as dev:
        assert "Did you mean" in str(await dev(typo))
        assert "Did you mean" in str(await dev(enum_typo, {"r": "ADMN"}))
    async with client(app_with(services, env="production"), admin) as prod:
        assert (await prod.http.get("/graphql", headers={"Accept": "text/html"})).status_code == 404
        introspected = await prod("{ __schema { types { name } } }")
        assert set(error_codes(introspected)) == {"GRAPHQL_VALIDATION_FAILED"} and not introspected["data"]
        refused = await prod(typo)
        assert error_codes(refused) and "Did you mean" not in str(refused)
        coerced = await prod(enum_typo, {"r": "ADMN"})
        assert coerced["errors"] and "Did you mean" not in str(coerced)
    async with client(
        app_with(services, env="production", introspection=True, field_suggestions=True), admin
    ) as on:
        assert (await on.data("{ __schema { queryType { name } } }"))["__schema"]
        assert "Did you mean" in str(await on(typo))


# --- rate limits --------------------------------------------------------------------------------------


async def test_a_key_over_its_rate_gets_rate_limited_with_retry_after(
    services: Services, admin: Key, ws_connect: Any
) -> None:
    app = app_with(services, rate_limiter=LocalRateLimiter(rate=0.2, burst=3))
    other = await issue_key(services, "alpha")
    async with client(app, admin) as gql:
        for _ in range(3):
            assert (await gql.post(VIEWER)).status_code == 200
        limited = await gql.post(VIEWER)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        error = limited.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryAfter"] >= 1
        assert (await gql.as_key(other.secret).post(VIEWER)).status_code == 200  # per key
    async with (
        serving(app) as url,
        websockets.connect(f"ws://{url}/graphql", subprotocols=["graphql-transport-ws"]) as socket,
    ):  # type: ignore[list-item]
        ws = TransportWs(socket)
        await ws.init({"authorization": f"Bearer {admin.secret}"})
        await ws.subscribe("1", 'subscription { projectRuns(projectId: "x") { id } }')
        assert "RATE_LIMITED" in str(await ws.receive())


@pytest.mark.redis
async def test_the_redis_bucket_is_shared_refills_and_expires() -> None:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"ptw-test-{secrets.token_hex(4)}"
    try:
        replica_a, replica_b = (RedisRateLimiter(redis, prefix, rate=2.0, burst=4) for _ in range(2))
        waits = [await (replica_a if i % 2 else replica_b).take("key-1") for i in range(5)]
        assert waits[:4] == [0, 0, 0, 0] and 0 < waits[4] <= 0.5
        assert await replica_a.take("key-2") == 0  # another key has its own bucket
        await asyncio.sleep(0.6)
        assert await replica_b.take("key-1") == 0  # refilled
        assert 0 < await redis.pttl(f"{prefix}:ratelimit:key-1") <= 3000
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


# --- WebSocket abuse ---------------------------------------------------------------------------------

SUBSCRIBE = {"type": "subscribe", "payload": {"query": 'subscription { projectRuns(projectId: "x") { id } }'}}


async def closed_with(socket: websockets.ClientConnection) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        for _ in range(10):
            await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


@pytest.fixture
async def ws_url(services: Services) -> AsyncIterator[str]:
    app = app_with(services, ws_init_timeout=0.3, ws_max_subscriptions=2, ws_max_message_bytes=4096)
    async with serving(app) as url:
        yield f"ws://{url}/graphql"


def connect(url: str) -> Any:
    return websockets.connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]


async def test_websocket_protocol_abuse_is_closed_with_the_protocol_codes(ws_url: str, admin: Key) -> None:
    init = {"type": "connection_init", "payload": {"authorization": f"Bearer {admin.secret}"}}
    async with connect(ws_url) as socket:  # no connection_init
        assert await closed_with(socket) == 4408
    async with connect(ws_url) as socket:
        await socket.send(json.dumps({"id": "1", **SUBSCRIBE}))  # subscribe before the ack
        assert await closed_with(socket) == 4401
    async with connect(ws_url) as socket:
        await socket.send(json.dumps(init))
        await socket.send(json.dumps(init))
        assert await closed_with(socket) == 4429
    async with connect(ws_url) as socket:
        bad = {"type": "connection_init", "payload": {"authorization": "Bearer ptw_000000000000_nope"}}
        await socket.send(json.dumps(bad))
        assert await closed_with(socket) == 4403
    async with connect(ws_url) as socket:
        ws = TransportWs(socket)
        assert (await ws.init(init["payload"]))["type"] == "connection_ack"
        project = encode_id("Project", admin.project_id)
        running = {"query": f'subscription {{ projectRuns(projectId: "{project}") {{ id }} }}'}
        await ws.send({"id": "1", "type": "subscribe", "payload": running})
        await ws.send({"id": "1", "type": "subscribe", "payload": running})  # the same operation id again
        assert await closed_with(socket) == 4409


async def test_websocket_bounds_subscriptions_and_message_size(ws_url: str, admin: Key) -> None:
    project = encode_id("Project", admin.project_id)
    query = f'subscription {{ projectRuns(projectId: "{project}") {{ id }} }}'
    async with connect(ws_url) as socket:
        ws = TransportWs(socket)
        await ws.init({"authorization": f"Bearer {admin.secret}"})
        for op_id in ("1", "2", "3"):
            await ws.subscribe(op_id, query)
        refused = await ws.receive()
        assert refused["id"] == "3" and "limit" in str(refused).lower()
        await ws.send({"id": "4", "type": "subscribe", "payload": {"query": query + " " * 8192}})
        assert await closed_with(socket) == 1009
