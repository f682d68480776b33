"""The real product for e2e tests: `ptw serve` in a subprocess on a free port, talked to over HTTP and WS."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from ptw.client import GraphQLClient
from tests.fixtures.databases import fresh_postgres_url

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("PTW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``ptw serve``: embedded by default; given ``env`` (production settings) and a ``key``, a replica."""

    def __init__(
        self,
        data_dir: Path,
        executors: int = 2,
        env: dict[str, str] | None = None,
        key: str | None = None,
        log_name: str = "server.log",
        port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / log_name
        base = {**os.environ, "PTW_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
        base.pop("PTW_DATABASE_URL", None)
        base.pop("PTW_REDIS_URL", None)
        env = {**base, **(env or {})}
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ptw.cli",
                "serve",
                "--port",
                str(self.port),
                "--executors",
                str(executors),
            ],
            cwd=data_dir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_healthy()
        self.key = key or (data_dir / "admin.key").read_text().strip()

    def _wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ptw serve exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"ptw serve did not become healthy:\n{self.output()}")

    def client(self, key: str | None = "default") -> GraphQLClient:
        return GraphQLClient(self.url, self.key if key == "default" else key)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("ptw-e2e"))
    try:
        yield srv
    finally:
        srv.stop()


class Production:
    """The production product on a fresh PostgreSQL database and a random Redis prefix: the database
    migrated once, an admin key made with ``ptw keys create``, then API replicas and workers on demand."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.data_dir = data_dir
        self.prefix = f"ptw-e2e-{secrets.token_hex(6)}"
        self.env = {
            "PTW_DATA_DIR": str(data_dir),
            "PTW_DATABASE_URL": database_url,
            "PTW_REDIS_URL": REDIS_URL,
            "PTW_REDIS_PREFIX": self.prefix,
            "PYTHONPATH": str(REPO),
        }
        self.processes: list[Server | Worker] = []
        self.cli("db", "upgrade")
        self.key = self.cli("keys", "create", "--project", "default").strip().splitlines()[-1]

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ptw.cli", *args],
            cwd=self.data_dir,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"ptw {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def replica(self) -> Server:
        """``ptw serve --executors 0``: the API alone."""
        name = f"replica-{len(self.processes)}.log"
        server = Server(self.data_dir, executors=0, env=self.env, key=self.key, log_name=name)
        self.processes.append(server)
        return server

    def worker(self, slots: int = 1) -> Worker:
        worker = Worker(self.data_dir, self.env, slots, f"worker-{len(self.processes)}.log")
        self.processes.append(worker)
        return worker

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


class Worker:
    """``ptw worker`` in a subprocess."""

    def __init__(self, data_dir: Path, env: dict[str, str], slots: int, log_name: str) -> None:
        self.log_path = data_dir / log_name
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ptw.cli", "worker", "--slots", str(slots)],
            cwd=data_dir,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> int | None:
        """SIGTERM, as an orchestrator stops it; returns its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()
        return self.process.returncode


async def drop_redis_keys(prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(redis.ping(), 5)
    except Exception as exc:
        pytest.fail(f"Redis at {REDIS_URL} is unreachable: {exc!r}")
    try:
        for pattern in (f"{prefix}:*", f"arq:*:{prefix}:*"):
            keys = [k async for k in redis.scan_iter(match=pattern, count=1000)]
            if keys:
                await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    """Fresh PostgreSQL database and Redis prefix for the module; fails when either is unreachable."""
    loop = asyncio.new_event_loop()
    database = fresh_postgres_url()
    try:
        url = loop.run_until_complete(database.__aenter__())
        loop.run_until_complete(drop_redis_keys("ptw-e2e-probe"))  # fails the test when Redis is down
        stack = Production(tmp_path_factory.mktemp("ptw-production"), url)
        try:
            yield stack
        finally:
            stack.stop()
            loop.run_until_complete(drop_redis_keys(stack.prefix))
    finally:
        loop.run_until_complete(database.__aexit__(None, None, None))
        loop.close()
