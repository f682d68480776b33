"""The real product for e2e tests: `ptw serve` in a subprocess on a free port, talked to over HTTP and WS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ptw.client import GraphQLClient

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, executors: int = 2) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PTW_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
        env.pop("PTW_DATABASE_URL", None)
        env.pop("PTW_REDIS_URL", None)
        self.log = open(data_dir / "server.log", "wb")
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
        self.key = (data_dir / "admin.key").read_text().strip()

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
        return (self.data_dir / "server.log").read_text(errors="replace")[-5000:]

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
