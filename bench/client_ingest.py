"""Tracking client ingest, side by side with MLflow: a separate process logs 10 keys x 20,000 steps through
``ptw.init`` (the bulk columns endpoint) and through MLflow 3's ``log_batch`` (1,000 points a call), each
timed from just before its run is created until every point is stored (DESIGN §10: ≥ 20x MLflow).

ptw runs in production wiring (`ptw serve --executors 0` with its metric ingester, a fresh PostgreSQL
database, a Redis prefix of its own); "stored" is the API's ``total`` of every key. MLflow runs as
``mlflow server`` on another fresh database of the same PostgreSQL, installed in a virtualenv of its own
(never a dependency of the project):

    python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow==3.17.2 psycopg2-binary
    python -m bench.client_ingest [--keys 10] [--steps 20000] [--mlflow-venv /tmp/mlflow-venv]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO

import asyncpg
import httpx

from bench.common import POSTGRES, report
from bench.stack import REPO, Replica, Stack, free_port, production_stack

TOTAL = "query($id: ID!, $k: String!) { run(id: $id) { metrics(key: $k, maxPoints: 1) { total } } }"
LATEST = "query($id: ID!) { run(id: $id) { latestMetrics { key step } } }"
TARGET = 20.0


def logger(command: list[str], env: dict[str, str]) -> dict[str, str]:
    """Run a logging process to its end; its STARTED / RUN / LOGGED lines."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    return lines


async def ptw_stored(
    http: httpx.AsyncClient, api: Replica, stack: Stack, run_id: str, keys: int, steps: int
) -> float:
    """Unix time at which the API first counts every point of every key. Cheap probes of each key's
    latest step first (a series' total reads the series, which would compete with the ingest), then
    the totals to be sure."""

    async def ask(query: str, variables: dict[str, object]) -> dict[str, object]:
        body = {"query": query, "variables": variables}
        answer = (await http.post(f"{api.url}/graphql", json=body, headers=stack.headers)).json()
        return dict(answer["data"]["run"])

    while True:
        latest = await ask(LATEST, {"id": run_id})
        done = {p["key"] for p in latest["latestMetrics"] if p["step"] == steps - 1}  # type: ignore[attr-defined]
        if len(done) == keys:
            at = time.time()
            totals = [await ask(TOTAL, {"id": run_id, "k": f"k{i}"}) for i in range(keys)]
            if all(t["metrics"]["total"] >= steps for t in totals):  # type: ignore[index]
                return at
        await asyncio.sleep(0.01)


async def measure_ptw(args: argparse.Namespace) -> float:
    async with production_stack() as stack:
        api = await stack.replica()
        env = {**stack.env, "PTW_URL": api.url, "PTW_API_KEY": stack.key}
        command = [sys.executable, "-m", "bench.client_loggers", "ptw", api.url, stack.key]
        lines = await asyncio.to_thread(logger, [*command, str(args.keys), str(args.steps)], env)
        async with httpx.AsyncClient(timeout=30) as http:
            stored = await asyncio.wait_for(
                ptw_stored(http, api, stack, lines["RUN"], args.keys, args.steps), args.timeout
            )
        return stored - float(lines["STARTED"])


def start_mlflow(
    python: Path, database: str, data: Path, port: int
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    log = open(data / "mlflow.log", "wb")
    command = [str(python), "-m", "mlflow", "server", "--backend-store-uri", database]
    command += ["--artifacts-destination", str(data / "artifacts"), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=data), log


async def measure_mlflow(args: argparse.Namespace) -> float:
    python = Path(args.mlflow_venv) / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"no MLflow virtualenv at {args.mlflow_venv}: see this module's docstring")
    name = f"mlflow_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = POSTGRES.rsplit("/", 1)[0]
    port = free_port()
    data = Path(os.environ.get("TMPDIR", "/tmp")) / name
    data.mkdir()
    store = f"{base.replace('postgresql://', 'postgresql+psycopg2://', 1)}/{name}"  # the venv has psycopg2
    server, log = start_mlflow(python, store, data, port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                try:
                    if (await http.get(f"{url}/health", timeout=1)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None:
                    log.flush()
                    raise RuntimeError(f"mlflow server exited:\n{(data / 'mlflow.log').read_text()[-3000:]}")
                await asyncio.sleep(0.2)
        command = [str(python), str(REPO / "bench" / "client_loggers.py"), "mlflow", url]
        lines = await asyncio.to_thread(logger, [*command, str(args.keys), str(args.steps)], dict(os.environ))
        # log_batch returns once its points are committed: check they all are.
        db = await asyncpg.connect(f"{base}/{name}")
        try:
            stored = await db.fetchval("SELECT count(*) FROM metrics WHERE run_uuid = $1", lines["RUN"])
        finally:
            await db.close()
        if stored < args.keys * args.steps:
            raise RuntimeError(f"MLflow stored {stored} of {args.keys * args.steps} points")
        return float(lines["LOGGED"]) - float(lines["STARTED"])
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        admin = await asyncpg.connect(POSTGRES)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def measure(args: argparse.Namespace) -> None:
    points = args.keys * args.steps
    ptw_s = await measure_ptw(args)
    mlflow_s = await measure_mlflow(args)
    ptw_rate, mlflow_rate = points / ptw_s, points / mlflow_s
    ratio = ptw_rate / mlflow_rate
    report(
        "client_ingest",
        [
            ("points", f"{points:,} ({args.keys} keys x {args.steps:,} steps), each from its own process"),
            ("ptw.init → all stored", f"{ptw_s:.3f} s = {ptw_rate:,.0f} points/s"),
            (
                "MLflow log_batch (1,000 a call) → all stored",
                f"{mlflow_s:.3f} s = {mlflow_rate:,.0f} points/s",
            ),
            ("ratio ptw / MLflow", f"{ratio:.1f}x (target ≥ {TARGET:g}x)"),
        ],
        {
            "points": points,
            "ptw_s": round(ptw_s, 4),
            "ptw_points_per_s": round(ptw_rate),
            "mlflow_s": round(mlflow_s, 4),
            "mlflow_points_per_s": round(mlflow_rate),
            "ratio": round(ratio, 2),
            "target_ratio": TARGET,
            "met": ratio >= TARGET,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--mlflow-venv", default="/tmp/mlflow-venv")
    parser.add_argument("--timeout", type=float, default=300.0)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
