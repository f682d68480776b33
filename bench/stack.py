"""The production product for the end-to-end benchmarks: a fresh database, a Redis prefix of its own,
`ptw serve --executors 0` replicas and `ptw worker` processes, all cleaned up afterwards.

The bench process also holds production ``Services`` on the same database and Redis (for the API key,
registering the bench's workflows and reading what was stored), exactly as the processes it starts do.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from bench.common import REDIS, fresh_postgres
from ptw.domain.services.workflows import WorkflowSpec
from ptw.domain.tenancy import Role
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.settings import Settings

REPO = Path(__file__).resolve().parent.parent
START = "mutation($input: StartRunInput!) { startRun(input: $input) { id status } }"
RUN = "query($id: ID!) { run(id: $id) { id status error } }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A `ptw` subprocess logging to a file of the stack's directory."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.started_at = time.time()
        profile = os.environ.get("PTW_BENCH_PROFILE_DIR")  # cProfile each process (written when it stops)
        wrapper = ["-m", "cProfile", "-o", f"{profile}/{log_path.stem}.prof"] if profile else []
        self.process = subprocess.Popen(
            [sys.executable, *wrapper, "-m", "ptw.cli", *args],
            cwd=log_path.parent,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, grace: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


class Replica(Process):
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve", "--port", str(self.port), "--executors", "0"], env, log_path)

    async def healthy(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"ptw serve exited early:\n{self.output()[-3000:]}")
                try:
                    if (await http.get(f"{self.url}/healthz", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"ptw serve did not become healthy:\n{self.output()[-3000:]}")


class Worker(Process):
    def __init__(self, env: dict[str, str], log_path: Path, slots: int = 1) -> None:
        super().__init__(["worker", "--slots", str(slots)], env, log_path)

    async def ready(self, within: float = 120.0) -> None:
        """Until it printed that its slots are warm and it takes runs."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if "Worker ready" in self.output():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"ptw worker exited early:\n{self.output()[-3000:]}")
            await asyncio.sleep(0.05)
        raise RuntimeError(f"ptw worker did not become ready:\n{self.output()[-3000:]}")

    async def warm(self, slots: int = 1, within: float = 120.0) -> None:
        """Until each slot holds its fork server and a spare runner forked from it, done starting: their
        CPU time stands still (a spare runner blocks on its stdin until a job comes)."""
        deadline, still_since = time.monotonic() + within, 0.0
        last: dict[int, int] = {}
        while time.monotonic() < deadline:
            ticks = runner_cpu(self.process.pid)
            if len(ticks) < 2 * slots or ticks != last:
                still_since, last = time.monotonic(), ticks
            elif time.monotonic() - still_since >= 0.3:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the worker's runners did not become warm")


def cpu_seconds(pid: int) -> float:
    """CPU time a process used so far (user + system; Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runner_cpu(worker_pid: int) -> dict[int, int]:
    """CPU ticks of a worker's fork servers and the runners forked from them (which keep the fork
    server's command line), by pid (Linux /proc)."""
    from ptw.executors.process_tree import descendants

    ticks: dict[int, int] = {}
    for proc in descendants(worker_pid):
        try:
            if b"ptw.executors.fork_server" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it just exited
        ticks[proc.pid] = int(fields[11]) + int(fields[12])
    return ticks


class Stack:
    def __init__(self, database_url: str, prefix: str, data_dir: Path, services: Services, key: str) -> None:
        self.database_url, self.prefix, self.data_dir = database_url, prefix, data_dir
        self.services, self.key = services, key
        self.processes: list[Process] = []
        self.env = {
            **os.environ,
            "PTW_DATA_DIR": str(data_dir),
            "PTW_DATABASE_URL": database_url,
            "PTW_REDIS_URL": REDIS,
            "PTW_REDIS_PREFIX": prefix,
            "PTW_LOG_LEVEL": "warning",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        self.headers = {"Authorization": f"Bearer {key}"}

    @property
    def asyncpg_url(self) -> str:
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def replica(self) -> Replica:
        replica = Replica(self.env, self.data_dir / f"replica-{len(self.processes)}.log")
        self.processes.append(replica)
        await replica.healthy()
        return replica

    def worker(self, slots: int = 1, settings: dict[str, str] | None = None) -> Worker:
        """A `ptw worker`; ``settings`` are extra environment variables (``PTW_WORKER_POLL_DELAY``...)."""
        env = {**self.env, **(settings or {})}
        worker = Worker(env, self.data_dir / f"worker-{len(self.processes)}.log", slots)
        self.processes.append(worker)
        return worker

    async def register(self, name: str, entrypoint: str) -> str:
        """A workflow of the bench's own (its module must be importable by the workers); its id."""
        actor = await self.services.access.authenticate(self.key)
        workflow = await self.services.workflows.register(actor, None, WorkflowSpec(name, entrypoint))
        from ptw.api.ids import encode_id

        return encode_id("Workflow", workflow.id)

    async def start_run(self, http: httpx.AsyncClient, api: Replica, workflow_id: str, params: Any) -> str:
        """``startRun`` over HTTP; the run's (global) id."""
        body = {"query": START, "variables": {"input": {"workflowId": workflow_id, "params": params}}}
        answer = (await http.post(f"{api.url}/graphql", json=body, headers=self.headers)).json()
        if answer.get("errors"):
            raise RuntimeError(f"startRun failed: {answer['errors']}")
        return str(answer["data"]["startRun"]["id"])

    async def run_status(self, http: httpx.AsyncClient, api: Replica, run_id: str) -> dict[str, Any]:
        body = {"query": RUN, "variables": {"id": run_id}}
        answer = (await http.post(f"{api.url}/graphql", json=body, headers=self.headers)).json()
        return dict(answer["data"]["run"])

    async def wait_finished(
        self, http: httpx.AsyncClient, api: Replica, run_id: str, within: float = 120.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            run = await self.run_status(http, api, run_id)
            if run["status"] in ("SUCCEEDED", "FAILED", "CANCELLED", "PRUNED"):
                return run
            await asyncio.sleep(0.1)
        raise RuntimeError(f"run {run_id} did not finish within {within} s")

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.output()[-2000:]}" for p in self.processes)


async def connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url)


async def drop_redis_keys(prefix: str) -> None:
    redis = Redis.from_url(REDIS)
    try:
        for pattern in (f"{prefix}:*", f"arq:*:{prefix}:*"):
            keys = [k async for k in redis.scan_iter(match=pattern, count=1000)]
            if keys:
                await redis.delete(*keys)
    finally:
        await redis.aclose()


@asynccontextmanager
async def production_stack() -> AsyncIterator[Stack]:
    """A fresh database (migrated) and Redis prefix, with an admin key; processes are added by the bench."""
    prefix = f"ptw-bench-{secrets.token_hex(5)}"
    async with fresh_postgres() as url:
        with tempfile.TemporaryDirectory(prefix="ptw-bench-") as tmp:
            settings = Settings(database_url=url, redis_url=REDIS, redis_prefix=prefix, data_dir=Path(tmp))
            services = await bootstrap(settings, migrate=True)
            stack: Stack | None = None
            try:
                issued = await services.access.bootstrap_key("bench", Role.ADMIN)
                stack = Stack(url, prefix, Path(tmp), services, issued.secret)
                yield stack
            finally:
                if stack is not None:
                    for process in reversed(stack.processes):
                        process.stop()
                await services.aclose()
                await drop_redis_keys(prefix)
