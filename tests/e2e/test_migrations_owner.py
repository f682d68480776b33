"""Only ``ptw db upgrade`` migrates a shared database: workers, production replicas and ``ptw keys create``
refuse a schema that is not at head with one line naming it, and start at once after the upgrade."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import REDIS_URL, REPO
from tests.fixtures.databases import fresh_postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    async with fresh_postgres_url() as url:
        yield {
            **os.environ,
            "PTW_DATA_DIR": str(tmp_path),
            "PTW_DATABASE_URL": url,
            "PTW_REDIS_URL": REDIS_URL,
            "PTW_REDIS_PREFIX": f"ptw-migrate-{time.monotonic_ns()}",
            "PYTHONPATH": str(REPO),
        }


def ptw(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ptw.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "command",
    [
        ("worker",),
        ("worker", "--autoscale", "--min", "0", "--max", "2"),
        ("serve", "--executors", "0", "--port", "0"),
        ("keys", "create", "--project", "p"),
    ],
    ids=["worker", "autoscale", "serve", "keys-create"],
)
def test_commands_refuse_a_database_not_at_head_naming_the_upgrade(
    env: dict[str, str], command: tuple[str, ...]
) -> None:
    done = ptw(env, *command)
    assert done.returncode == 3, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "ptw db upgrade" in lines[0] and "Traceback" not in done.stderr


def test_after_the_upgrade_several_workers_come_up_at_once(env: dict[str, str], tmp_path: Path) -> None:
    assert ptw(env, "db", "upgrade").returncode == 0
    logs = [tmp_path / f"worker-{i}.log" for i in range(3)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "ptw.cli", "worker"],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all("ready" in log.read_text(errors="replace").lower() for log in logs):
                break
            assert all(w.poll() is None for w in workers), [log.read_text() for log in logs]
            time.sleep(0.2)
        assert all(w.poll() is None for w in workers), [log.read_text() for log in logs]
        assert all("ready" in log.read_text(errors="replace").lower() for log in logs), [
            log.read_text() for log in logs
        ]
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
