"""A hostile tenant against one replica: how long each hostile request takes to be answered, and how long
`/healthz` waits while it is in flight (the target: every probe within 100 ms).

An embedded `ptw serve --executors 0` in its own process; a member key of its project sends each hostile
request while this process probes `/healthz` on another connection every 5 ms. Baseline: the probes of
an idle replica, measured in the same run.

    python -m bench.hostile [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import report, summary_ms

LOG = "mutation($r: ID!, $p: [MetricInput!]!) { logMetrics(runId: $r, points: $p) }"


def spreads(levels: int) -> str:
    chain = " ".join(f"fragment F{i} on Run {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    return (
        f"{{ runs(first: 1) {{ edges {{ node {{ ...F0 }} }} }} }} {chain} fragment F{levels} on Run {{ id }}"
    )


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": [value]}
    return value


def hostile_bodies(run_id: str) -> dict[str, Callable[[], bytes]]:
    def graphql(query: str, variables: dict[str, Any] | None = None) -> Callable[[], bytes]:
        return lambda: json.dumps({"query": query, "variables": variables or {}}).encode()

    points = [{"key": f"k{i % 20}", "step": i, "value": 0.5} for i in range(250)]  # the input list limit
    return {
        "fragment spreads, 20 levels": graphql(spreads(20)),
        "fragment spreads, 39 levels": graphql(spreads(39)),
        "one field 400 times": graphql("{ " + " ".join(["runs { edges { node { id } } }"] * 400) + " }"),
        "params nested 300 deep": graphql(
            'mutation($p: JSON) { startRun(input: {workflowId: "x", params: $p}) { id } }', {"p": nested(300)}
        ),
        "logMetrics, 250 points (accepted)": graphql(LOG, {"r": run_id, "p": points}),
        "logMetrics, 1,000 points (refused)": graphql(LOG, {"r": run_id, "p": points * 4}),
        "logMetrics, 20,000 points (refused)": graphql(LOG, {"r": run_id, "p": points * 80}),
        "200 KB nested body": lambda: (
            b'{"query": "{ viewer { id } }", "variables": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
        ),
    }


async def probe(url: str, until: asyncio.Future[Any] | None, seconds: float = 1.0) -> list[float]:
    waits: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        await http.get("/healthz")
        deadline = time.monotonic() + seconds
        while (
            not waits
            or (until is not None and not until.done())
            or (until is None and time.monotonic() < deadline)
        ):
            started = time.monotonic()
            await http.get("/healthz")
            waits.append(time.monotonic() - started)
            await asyncio.sleep(0.005)
    return waits


async def measure(url: str, key: str, repeat: int) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=600, headers=headers) as http:
        started = await http.post(
            "/graphql", json={"query": "mutation { startExternalRun(input: {}) { id } }"}
        )
        run_id = started.json()["data"]["startExternalRun"]["id"]
        idle = await probe(url, None)
        rows = [("/healthz, idle replica", _ms(summary_ms(idle)))]
        result: dict[str, Any] = {"idle": summary_ms(idle)}
        for name, body in hostile_bodies(run_id).items():
            answers, waits = [], []
            for _ in range(repeat):
                begun = time.monotonic()
                sent = asyncio.ensure_future(http.post("/graphql", content=body()))
                waits += await probe(url, sent)
                response = await sent
                answers.append(time.monotonic() - begun)
            codes = sorted({_code(response)})
            rows.append(
                (
                    name,
                    f"answered in {max(answers) * 1000:.1f} ms ({codes}); /healthz {_ms(summary_ms(waits))}",
                )
            )
            result[name] = {"answer_ms": max(answers) * 1000, "healthz": summary_ms(waits), "codes": codes}
    return rows, result


def _code(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return str(response.status_code)
    return errors[0]["extensions"]["code"] if errors else str(response.status_code)


def _ms(summary: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.1f}" for name, value in summary.items())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ptw-bench-hostile-") as data:
        port = free_port()
        env = {**os.environ, "PTW_DATA_DIR": data, "PTW_RATE_LIMIT": "0"}
        env.pop("PTW_DATABASE_URL", None)
        env.pop("PTW_REDIS_URL", None)
        command = [sys.executable, "-m", "ptw.cli", "serve", "--port", str(port), "--executors", "0"]
        server = subprocess.Popen(
            command, env=env, cwd=data, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            key = (Path(data) / "admin.key").read_text().strip()
            rows, result = asyncio.run(measure(url, key, args.repeat))
        finally:
            server.terminate()
            server.wait(15)
    report("hostile", rows, result)


if __name__ == "__main__":
    main()
