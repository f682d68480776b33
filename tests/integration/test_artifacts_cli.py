"""``ptw artifacts list|download`` against a live server: the run's files, streamed to disk whole."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from ptw.domain.artifacts import KIND_FILE
from ptw.infra.bootstrap import Services
from tests.fixtures.graphql_client import Key

pytest_plugins = ["tests.fixtures.api"]
REPO = Path(__file__).resolve().parents[2]


async def cli(live_url: str, key: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "PTW_URL": f"http://{live_url}", "PTW_API_KEY": key, "PYTHONPATH": str(REPO)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ptw.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_a_saved_file_is_listed_and_downloaded(
    services: Services, admin: Key, live_url: str, tmp_path: Path
) -> None:
    actor = await services.access.authenticate(admin.secret)
    workflow = await services.workflows.get_by_name(actor, "digits-mlp")
    run = await services.runs.start_run(actor, workflow.id)
    stored = services.settings.artifacts_dir / run.id / "files" / "report.txt"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"x" * 3_000_000)  # more than one chunk
    await services.execution.add_checkpoint(
        run.id, 1, None, stored.as_uri(), 3_000_000, "report.txt", KIND_FILE
    )

    code, listed = await cli(live_url, admin.secret, "artifacts", "list", run.id)
    assert code == 0 and "report.txt" in listed and "3000000" in listed, listed
    target = tmp_path / "got.txt"
    code, said = await cli(
        live_url, admin.secret, "artifacts", "download", run.id, "report.txt", "-o", str(target)
    )
    assert code == 0, said
    assert target.read_bytes() == b"x" * 3_000_000
    code, said = await cli(live_url, admin.secret, "artifacts", "download", run.id, "nope.txt")
    assert code != 0 and "has no artifact 'nope.txt'; it has: report.txt" in said, said
