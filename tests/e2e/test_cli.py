"""The terminal as a user drives it: `ptw` subprocesses against a real `ptw serve` (lists, show, logs,
cancel, register, projects and keys, `--json` for scripts), then the server stopped and bad input: one or
two lines saying what to do, never a traceback, and exit codes that tell usage from server errors and
from a run that failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, Server, free_port


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("ptw-cli"), executors=1)
    try:
        yield srv
    finally:
        srv.stop()


def ptw(
    server: Server, *args: str, url: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PTW_DATA_DIR": str(server.data_dir), "PTW_URL": url or server.url, "COLUMNS": "200"}
    env.pop("PTW_API_KEY", None)  # the local key file of the embedded server is found by itself
    done = subprocess.run(
        [sys.executable, "-m", "ptw.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def ptw_json(server: Server, *args: str) -> Any:
    done = ptw(server, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_workflows_register_list_and_show(cli_server: Server) -> None:
    names = {w["name"] for w in ptw_json(cli_server, "workflows", "list")}
    assert {"digits-mlp", "digits-cnn", "tiny-lm", "external"} <= names
    shown = ptw_json(cli_server, "workflows", "show", "digits-mlp")
    assert shown["defaults"]["epochs"] == 20 and "lr" in shown["paramsSchema"]["properties"]
    schema = json.dumps({"type": "object", "properties": {"seconds": {"type": "number"}}})
    registered = ptw(
        cli_server, "workflows", "register", "cli-sleeps", "tests.workflows.sample:sleeps", "--schema", schema
    )
    assert registered.returncode == 0 and "cli-sleeps" in registered.stdout
    assert (
        ptw_json(cli_server, "workflows", "show", "cli-sleeps")["entrypoint"]
        == "tests.workflows.sample:sleeps"
    )
    unknown = ptw(cli_server, "workflows", "show", "nope")
    assert (
        unknown.returncode == 2
        and "unknown workflow 'nope'" in unknown.stderr
        and "ptw workflows list" in unknown.stderr
    )


def test_run_watch_then_list_show_and_logs_with_the_short_id(cli_server: Server) -> None:
    done = ptw(
        cli_server, "run", "digits-mlp", "-p", "epochs=2", "--name", "cli-mlp", "--tag", "cli", "--watch"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCEEDED" in done.stdout and "val_accuracy" in done.stdout and "elapsed" in done.stdout
    runs = ptw_json(cli_server, "runs", "list", "--tag", "cli")
    assert [r["name"] for r in runs] == ["cli-mlp"]
    short = runs[0]["shortId"]
    assert short in done.stdout  # the id printed when it started is the one listed (and the UI's)
    table = ptw(cli_server, "runs", "list", "--status", "succeeded", "--workflow", "digits-mlp")
    assert table.returncode == 0 and short in table.stdout and "cli-mlp" in table.stdout
    shown = ptw_json(cli_server, "runs", "show", short)
    assert shown["status"] == "SUCCEEDED" and shown["params"]["epochs"] == 2 and shown["tags"] == ["cli"]
    assert short in ptw(cli_server, "runs", "show", short).stdout
    logs = ptw(cli_server, "runs", "logs", short, timeout=30)
    assert logs.returncode == 0 and "SUCCEEDED" in logs.stdout
    assert ptw(cli_server, "runs", "list", "--status", "sideways").returncode == 2


def test_a_failed_run_exits_1_and_cancel_stops_a_running_one(cli_server: Server) -> None:
    ptw(cli_server, "workflows", "register", "cli-raises", "tests.workflows.sample:raises")
    failed = ptw(cli_server, "run", "cli-raises", "--watch")
    assert failed.returncode == 1 and "FAILED" in failed.stdout
    started = ptw(cli_server, "run", "cli-sleeps", "-p", "seconds=60", "--name", "cli-sleeper")
    assert started.returncode == 0
    short = ptw_json(cli_server, "runs", "list", "--workflow", "cli-sleeps")[0]["shortId"]
    deadline = time.monotonic() + 60
    while ptw_json(cli_server, "runs", "show", short)["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    cancelled = ptw(cli_server, "runs", "cancel", short)
    assert cancelled.returncode == 0 and short in cancelled.stdout
    while ptw_json(cli_server, "runs", "show", short)["status"] != "CANCELLED":
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_projects_keys_and_optimizations(cli_server: Server) -> None:
    assert [p["name"] for p in ptw_json(cli_server, "projects", "list")] == ["default"]
    created = ptw(cli_server, "projects", "create", "cli-team")
    assert created.returncode == 0 and "cli-team" in created.stdout
    assert {p["name"] for p in ptw_json(cli_server, "projects", "list")} == {"default", "cli-team"}
    keys = ptw_json(cli_server, "keys", "list", "--project", "default")
    assert [k["role"] for k in keys] == ["ADMIN"] and keys[0]["name"] == "local admin"
    assert ptw_json(cli_server, "optimizations", "list") == []
    missing = ptw(cli_server, "optimizations", "show", "abcdef12")
    assert missing.returncode == 2 and "ptw optimizations list" in missing.stderr


def test_errors_say_what_to_do_in_a_line_or_two(cli_server: Server, tmp_path: Path) -> None:
    down = ptw(cli_server, "runs", "list", url=f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 3 and "does not answer" in down.stderr and "PTW_URL" in down.stderr
    assert len(down.stderr.strip().splitlines()) <= 2
    nan = ptw(cli_server, "run", "digits-mlp", "-p", "lr=NaN")
    assert nan.returncode == 2 and "lr=NaN" in nan.stderr and len(nan.stderr.strip().splitlines()) <= 2
    not_json = ptw(cli_server, "run", "digits-mlp", "-p", "layers=[64,")
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    refused = ptw(cli_server, "run", "digits-mlp", "-p", "epochs=-3", "--project", "default")
    assert refused.returncode == 2 and "epochs" in refused.stderr
    unknown = ptw(cli_server, "run", "no-such-workflow")
    assert unknown.returncode == 2 and "unknown workflow" in unknown.stderr
    env = {**os.environ, "PTW_DATA_DIR": str(tmp_path), "PTW_URL": cli_server.url}
    env.pop("PTW_API_KEY", None)
    no_key = subprocess.run(
        [sys.executable, "-m", "ptw.cli", "runs", "list"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert no_key.returncode == 2 and "no API key found" in no_key.stderr and str(tmp_path) in no_key.stderr
