"""The tracking client as a user runs it: a script in its own process (not an executor) logs through
ptw.init() against a real `ptw serve`, and ends normally, by an exception, by Ctrl-C and by being killed;
the same script registered as a workflow runs inside an executor; a server that is down at first gets
every point once it is up."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ptw.client import GraphQLClient
from tests.e2e.conftest import REPO, Server, free_port

RUNS = """{ runs(first: 50) { edges { node { id shortId name status error summary external tags
  workflow { name } metricKeys } } } }"""
TOTAL = "query($id: ID!, $k: String!) { run(id: $id) { metrics(key: $k, maxPoints: 1) { total } } }"


@pytest.fixture(scope="module")
def tracked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A short heartbeat judgement (the client beats every 5 s) so that a killed script is noticed soon.
    env = {"PTW_RUN_LOST_AFTER": "10", "PTW_RUN_MONITOR_INTERVAL": "0.5"}
    srv = Server(tmp_path_factory.mktemp("ptw-tracking"), executors=1, env=env)
    try:
        yield srv
    finally:
        srv.stop()


def script(server_url: str, key: str, mode: str, steps: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PTW_URL": server_url, "PTW_API_KEY": key, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workflows.tracked", mode, str(steps)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def run_named(client: GraphQLClient, name: str, until: set[str], within: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        runs = [e["node"] for e in (await client.execute(RUNS))["runs"]["edges"]]
        found = [r for r in runs if r["name"] == name]
        if found and found[0]["status"] in until:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no run {name} in {until}: {found}")
        await asyncio.sleep(0.2)


async def totals(client: GraphQLClient, run_id: str) -> dict[str, int]:
    found = {}
    for key in ("loss", "acc", "lr"):
        found[key] = (await client.execute(TOTAL, {"id": run_id, "k": key}))["run"]["metrics"]["total"]
    return found


async def test_a_script_that_ends_normally_succeeds_with_every_point_and_its_summary(
    tracked_server: Server,
) -> None:
    done = script(tracked_server.url, tracked_server.key, "ok", 3000)
    _, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    assert "tracking run tracked-ok" in err
    client = tracked_server.client()
    run = await run_named(client, "tracked-ok", {"SUCCEEDED"})
    assert run["external"] and run["tags"] == ["e2e"] and run["workflow"]["name"] == "external"
    assert run["summary"] == {"best_loss": 1 / 3000}
    assert await totals(client, run["id"]) == {"loss": 3000, "acc": 3000, "lr": 3000}


async def test_an_exception_fails_the_run_with_the_traceback_tail(tracked_server: Server) -> None:
    done = script(tracked_server.url, tracked_server.key, "raise", 100)
    _, err = done.communicate(timeout=60)
    assert done.returncode == 1 and "ValueError: boom at the end" in err
    run = await run_named(tracked_server.client(), "tracked-raise", {"FAILED"})
    assert "Traceback" in run["error"] and "ValueError: boom at the end" in run["error"]
    assert await totals(tracked_server.client(), run["id"]) == {"loss": 100, "acc": 100, "lr": 100}


async def test_ctrl_c_cancels_the_run(tracked_server: Server) -> None:
    process = script(tracked_server.url, tracked_server.key, "wait", 10)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "waiting"
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    run = await run_named(tracked_server.client(), "tracked-wait", {"CANCELLED"})
    assert await totals(tracked_server.client(), run["id"]) == {"loss": 10, "acc": 10, "lr": 10}


async def test_a_killed_script_is_failed_when_its_heartbeat_stops(tracked_server: Server) -> None:
    process = script(tracked_server.url, tracked_server.key, "kill", 200)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    run = await run_named(tracked_server.client(), "tracked-kill", {"FAILED"}, within=30)
    assert "stopped heartbeating" in run["error"]
    assert await totals(tracked_server.client(), run["id"]) == {"loss": 200, "acc": 200, "lr": 200}


async def test_cancelling_from_the_api_interrupts_the_script(tracked_server: Server) -> None:
    process = script(tracked_server.url, tracked_server.key, "wait", 5)
    assert process.stdout is not None and process.stdout.readline().strip() == "waiting"
    client = tracked_server.client()
    run = await run_named(client, "tracked-wait", {"RUNNING"})
    await client.execute("mutation($id: ID!) { cancelRun(id: $id) { status } }", {"id": run["shortId"]})
    _, err = process.communicate(timeout=30)
    assert "was cancelled" in err
    assert (await run_named(client, "tracked-wait", {"CANCELLED"}))["id"] == run["id"]


async def test_the_same_script_inside_an_executor_tracks_the_executed_run(tracked_server: Server) -> None:
    client = tracked_server.client()
    registered = await client.execute(
        "mutation($i: RegisterWorkflowInput!) { registerWorkflow(input: $i) { id } }",
        {"i": {"name": "tracked", "entrypoint": "tests.workflows.tracked:train"}},
    )
    started = await client.execute(
        "mutation($w: ID!) { startRun(input: {workflowId: $w}) { id } }",
        {"w": registered["registerWorkflow"]["id"]},
    )
    run_id = started["startRun"]["id"]
    deadline = time.monotonic() + 90
    while True:
        run = (
            await client.execute(
                "query($id: ID!) { run(id: $id) { status error summary external } }", {"id": run_id}
            )
        )["run"]
        if run["status"] in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert run["status"] == "SUCCEEDED", run["error"]
    assert run["external"] is False and run["summary"] == {"best_loss": 1 / 50, "steps": 50}
    assert await totals(client, run_id) == {"loss": 50, "acc": 50, "lr": 50}
    runs = [e["node"] for e in (await client.execute(RUNS))["runs"]["edges"]]
    assert not [r for r in runs if r["name"] == "tracked-ok" and r["status"] == "RUNNING"]


async def test_points_logged_while_the_server_is_down_arrive_once_it_is_up(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "late"
    data_dir.mkdir()
    key_file = data_dir / "admin.key"
    first = Server(data_dir, executors=0, port=port)
    key = key_file.read_text().strip()
    first.stop()
    process = script(f"http://127.0.0.1:{port}", key, "ok", 2000)
    await asyncio.sleep(3)  # the script has logged everything into its buffer, with nobody answering
    assert process.poll() is None
    later = Server(data_dir, executors=0, port=port)
    try:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "logging locally" in err and "answers again" in err
        client = later.client()
        run = await run_named(client, "tracked-ok", {"SUCCEEDED"})
        assert await totals(client, run["id"]) == {"loss": 2000, "acc": 2000, "lr": 2000}
    finally:
        later.stop()
