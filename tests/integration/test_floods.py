"""Unbounded consumers and floods against the real app under uvicorn: a WebSocket client that never reads
is disconnected once a send has waited too long, and a flood of well-formed unknown keys from one address
stops reaching the database, while a real key from another address keeps being served."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from ptw.api.app import create_app
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.ratelimit import LocalRateLimiter
from ptw.infra.settings import Settings
from tests.fixtures.databases import fresh_postgres_url
from tests.fixtures.graphql_client import GraphQL, Key, error_codes, issue_key
from tests.integration.test_hardening import serving

pytest_plugins = ["tests.fixtures.api"]

EXTERNAL = "mutation { startExternalRun(input: {}) { id } }"
LOG = "mutation($run: ID!, $points: [MetricInput!]!) { logMetrics(runId: $run, points: $points) }"


def app_with(services: Services, **settings: Any) -> Starlette:
    limiter = settings.pop("auth_failure_limiter", services.auth_failure_limiter)
    replaced = Settings(data_dir=services.settings.data_dir, **settings)
    return create_app(dataclasses.replace(services, settings=replaced, auth_failure_limiter=limiter))


def never_reading_socket(url: str, message: dict[str, Any], more: list[dict[str, Any]]) -> socket.socket:
    """A WebSocket opened by hand on a socket with a tiny receive buffer, which then never reads."""
    host, port = url.split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /graphql HTTP/1.1\r\nHost: {url}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        ).encode()
    )
    assert b"101" in raw.recv(1024).split(b"\r\n")[0]
    for frame in (message, *more):
        raw.sendall(_masked(json.dumps(frame).encode()))
    return raw


def _masked(payload: bytes) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    header = bytes([0x81]) + (
        bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    )
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_a_websocket_client_that_never_reads_is_disconnected(services: Services, admin: Key) -> None:
    app = app_with(services, ws_send_timeout=0.5, rate_limit=0)
    async with serving(app) as url, httpx.AsyncClient(base_url=f"http://{url}", timeout=30) as http:
        gql = GraphQL(http, admin.secret)
        run = (await gql.data(EXTERNAL))["startExternalRun"]["id"]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {admin.secret}"}}
        follow = {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": RUN_METRICS, "variables": {"run": run}},
        }
        raw = await asyncio.to_thread(never_reading_socket, url, init, [follow])
        try:
            await asyncio.sleep(0.3)  # subscribed
            points = [
                {"key": f"metric-with-a-long-name-{i % 50}", "step": i, "value": 0.5} for i in range(250)
            ]
            for step in range(240):  # ~60 MB of points for a client that reads none of them
                await gql.data(
                    LOG, {"run": run, "points": [{**p, "step": p["step"] + step * 250} for p in points]}
                )
                assert (await http.get("/healthz")).status_code == 200
            # Reading now: what was buffered, then the end of the connection (never more points forever).
            raw.setblocking(False)
            # Without the send limit the connection stays open for ever and this times out.
            assert await asyncio.wait_for(_read_to_end(raw), 20) > 0
        finally:
            raw.close()


RUN_METRICS = "subscription($run: ID!) { runMetrics(runId: $run) { points { key step value } } }"


async def _read_to_end(raw: socket.socket) -> int:
    loop = asyncio.get_running_loop()
    total = 0
    while True:
        chunk = await loop.sock_recv(raw, 65536)
        if not chunk:
            return total
        total += len(chunk)


async def test_a_flood_of_unknown_keys_stops_reaching_the_database(services: Services, admin: Key) -> None:
    app = app_with(services, auth_failure_limiter=LocalRateLimiter(rate=1.0, burst=5))
    statements = services.database
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.0.0.66", 1)), base_url="http://t"
    ) as flood:
        answers = []
        before = statements.statements
        for i in range(50):
            forged = f"ptw_{i:012x}_" + "x" * 43
            response = await flood.post(
                "/graphql", json={"query": "{ viewer { id } }"}, headers={"Authorization": f"Bearer {forged}"}
            )
            answers.append(response.status_code)
        looked_up = statements.statements - before
        assert answers[:5] == [401] * 5 and set(answers[6:]) == {429}, answers
        assert looked_up <= 7, looked_up  # the first failures only; the rest never reached the database
        retry = response.json()["errors"][0]["extensions"]
        assert retry["code"] == "RATE_LIMITED" and retry["retryAfter"] >= 1
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.0.0.7", 1)), base_url="http://t"
    ) as other:
        assert (await GraphQL(other, admin.secret).data("{ viewer { id } }"))["viewer"]["id"]


async def test_an_unknown_prefix_is_answered_from_memory(services: Services, admin: Key) -> None:
    app = app_with(services, auth_failure_limiter=None)
    forged = "ptw_0123456789ab_" + "y" * 43
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        gql = GraphQL(http, forged)
        assert (await gql.post("{ viewer { id } }")).status_code == 401
        before = services.database.statements
        for _ in range(20):
            assert (await gql.post("{ viewer { id } }")).status_code == 401
        assert services.database.statements == before
        # A wrong secret of a real prefix is never remembered: its owner is not locked out.
        prefix = admin.secret.split("_")[1]
        wrong = GraphQL(http, f"ptw_{prefix}_" + "z" * 43)
        assert (await wrong.post("{ viewer { id } }")).status_code == 401
        assert (await GraphQL(http, admin.secret).data("{ viewer { id } }"))["viewer"]["id"]


async def test_metrics_answer_loopback_or_the_token_only(services: Services) -> None:
    def from_address(app: Starlette, host: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(host, 1)), base_url="http://t"
        )

    default = app_with(services)
    async with from_address(default, "127.0.0.1") as local, from_address(default, "203.0.113.9") as remote:
        assert (await local.get("/metrics")).status_code == 200
        assert (await remote.get("/metrics")).status_code == 403
    tokened = app_with(services, metrics_token="scrape-me")
    async with from_address(tokened, "203.0.113.9") as remote:
        assert (await remote.get("/metrics")).status_code == 403
        assert (await remote.get("/metrics", headers={"Authorization": "Bearer nope"})).status_code == 403
        scraped = await remote.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert scraped.status_code == 200 and "ptw_" in scraped.text


async def test_the_bulk_ingest_endpoint_shares_the_flood_guard(services: Services) -> None:
    app = app_with(services, auth_failure_limiter=LocalRateLimiter(rate=1.0, burst=3))
    transport = httpx.ASGITransport(app=app, client=("10.0.0.67", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as flood:
        statuses = []
        for i in range(10):
            forged = {"Authorization": f"Bearer ptw_{i + 100:012x}_" + "x" * 43}
            statuses.append(
                (await flood.post("/api/runs/r/metrics", content=b"{}", headers=forged)).status_code
            )
        assert statuses[:3] == [401] * 3 and set(statuses[4:]) == {429}, statuses


@pytest.mark.postgres
async def test_a_database_gone_during_authentication_is_a_graphql_error(tmp_path: Path) -> None:
    async with fresh_postgres_url() as url:
        services = await bootstrap(Settings(data_dir=tmp_path, database_url=url), migrate=True)
        try:
            admin = await issue_key(services, "alpha")
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(services)), base_url="http://t"
            ) as http:
                gql = GraphQL(http, admin.secret)
                assert (await gql.data("{ viewer { id } }"))["viewer"]["id"]
                await _drop_connections(url)
                dropped = await gql.post("{ viewer { id } }")
                assert dropped.status_code == 503 and dropped.headers["Retry-After"] == "1", dropped.text
                assert error_codes(dropped.json()) == ["SERVICE_UNAVAILABLE"]
                assert (await gql.data("{ viewer { id } }"))["viewer"]["id"]  # the pool reconnects
        finally:
            await services.aclose()


async def _drop_connections(url: str) -> None:
    """What a database failover does to the pool: every connection of the API to its database ends."""
    parsed = make_url(url)
    admin = await asyncpg.connect(
        parsed.set(drivername="postgresql", database="postgres").render_as_string(False)
    )
    try:
        others = "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
        await admin.execute(f"SELECT pg_terminate_backend(pid) FROM ({others}) AS api", parsed.database)
    finally:
        await admin.close()
