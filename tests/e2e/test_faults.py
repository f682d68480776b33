"""Fault injection on the production product, with real processes: workers killed or stopped mid-run, Redis
emptied, PostgreSQL cut off, an API replica killed under a subscriber, a child that always crashes.

One stack for the module (fresh PostgreSQL database, random Redis prefix): two `ptw serve --executors 0`
replicas and one `ptw worker` at a time, all reaching PostgreSQL through a TCP proxy the tests can cut
(the shared server itself is never stopped). Detection bounds are shortened through settings: heartbeats
every 0.5 s, an executor lost after 3 s. The tests share the stack and run in file order; the last ones
replace the worker they kill or stop. See docs/reliability.md for the guarantees they check.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from sqlalchemy import make_url

from ptw.client import GraphQLClient, GraphQLError
from tests.e2e.conftest import Production, Worker, drop_redis_keys
from tests.workflows.faults import value_at

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FAST = {
    "PTW_EXECUTOR_HEARTBEAT": "0.5",
    "PTW_RUN_LOST_AFTER": "3",
    "PTW_RUN_MONITOR_INTERVAL": "0.5",
    "PTW_RECONCILE_INTERVAL": "1",
    "PTW_PLACEMENT_TIMEOUT": "2",
    "PTW_DRAIN_GRACE": "5",
    "PTW_MAX_ATTEMPTS": "3",
}
REGISTER = "mutation($input: RegisterWorkflowInput!) { registerWorkflow(input: $input) { id } }"
START = "mutation($input: StartRunInput!) { startRun(input: $input) { id status } }"
RUN = """query($id: ID!) { run(id: $id) {
  id status attempt error summary executor checkpoints { attempt step }
} }"""
SERIES = """query($id: ID!) { run(id: $id) {
  metrics(key: "x", maxPoints: 100000) { total points { step value } }
} }"""
STORY = """query($id: ID!) { run(id: $id) {
  attempts { attempt executor device startedAt endedAt outcome reason }
  logs(first: 1000) { edges { node { stream line at } } pageInfo { hasNextPage } }
} }"""
POOL = "{ executorPool { workers } }"
RUN_METRICS = """subscription($id: ID!, $after: String) {
  runMetrics(runId: $id, after: $after) { cursor points { key step value } }
}"""
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "PRUNED"}


class PostgresProxy:
    """A TCP proxy to PostgreSQL, run in its own thread: ``cut`` drops every connection and refuses new
    ones (as a database that went down does), ``restore`` accepts again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pg-proxy", daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.transports: set[asyncio.WriteTransport] = set()
        self.port = self._call(self._listen(0))

    def _call(self, coroutine: Awaitable[Any]) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)  # type: ignore[arg-type]
        return future.result(10)

    async def _listen(self, port: int) -> int:
        self.server = await asyncio.start_server(self._connect, "127.0.0.1", port)
        return int(self.server.sockets[0].getsockname()[1])

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, upstream_writer.transport}
        self.transports |= pair
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        self.transports -= pair

    def cut(self) -> None:
        async def cut() -> None:
            assert self.server is not None
            self.server.close()
            for transport in list(self.transports):
                transport.abort()  # a reset, not a polite close: the database is gone

        self._call(cut())

    def restore(self) -> None:
        self._call(self._listen(self.port))

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort()


class Stack:
    def __init__(self, production: Production, proxy: PostgresProxy, direct_url: str) -> None:
        self.production = production
        self.proxy = proxy
        self.direct_url = direct_url
        self.a = production.replica()  # alone first: it installs the built-in workflows
        self.b = production.replica()
        self.worker: Worker = production.worker()
        self.workflows: dict[str, str] = {}

    def client(self) -> GraphQLClient:
        return self.a.client()

    def new_worker(self) -> Worker:
        self.worker = self.production.worker()
        return self.worker

    async def workflow(self, function: str, **options: Any) -> str:
        name = f"{function}-{'-'.join(f'{k}{v}' for k, v in sorted(options.items()))}".lower()
        if name not in self.workflows:
            spec = {"name": name, "entrypoint": f"tests.workflows.faults:{function}", **options}
            done = await self.client().execute(REGISTER, {"input": spec})
            self.workflows[name] = done["registerWorkflow"]["id"]
        return self.workflows[name]

    async def start(self, function: str, params: dict[str, Any], **options: Any) -> str:
        workflow_id = await self.workflow(function, **options)
        started = await self.client().execute(START, {"input": {"workflowId": workflow_id, "params": params}})
        return str(started["startRun"]["id"])

    async def run(self, run_id: str) -> dict[str, Any]:
        return dict((await self.client().execute(RUN, {"id": run_id}))["run"])

    async def until(
        self, run_id: str, done: Callable[[dict[str, Any]], bool], within: float, what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            run = await self.run(run_id)
            if done(run):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still {run} after {within} s\n{self.worker.output()}")
            await asyncio.sleep(0.2)

    async def finished(self, run_id: str, within: float = 60) -> dict[str, Any]:
        return await self.until(run_id, lambda r: r["status"] in TERMINAL, within, "not finished")

    async def series(self, run_id: str, points: int, within: float = 30) -> dict[int, float]:
        """The stored points of ``x`` once there are ``points`` of them (the ingester may lag)."""
        deadline = time.monotonic() + within
        while True:
            found = (await self.client().execute(SERIES, {"id": run_id}))["run"]["metrics"]
            if found["total"] >= points or time.monotonic() > deadline:
                steps = [p["step"] for p in found["points"]]
                assert len(steps) == len(set(steps)), "a step is stored twice"
                return {p["step"]: p["value"] for p in found["points"]}
            await asyncio.sleep(0.3)

    async def story(self, run_id: str) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """The run's attempts, and its stored output lines as (stream, line), read after it ended."""
        run = (await self.client().execute(STORY, {"id": run_id}))["run"]
        for attempt in run["attempts"]:
            assert attempt["endedAt"] is not None and attempt["endedAt"] >= attempt["startedAt"], attempt
        lines = [(e["node"]["stream"], e["node"]["line"]) for e in run["logs"]["edges"]]
        return run["attempts"], lines

    async def drains(self, run_id: str) -> int:
        connection = await asyncpg.connect(self.direct_url)
        try:
            uuid = base64.b64decode(run_id).decode().removeprefix("Run:")  # the API gives global ids
            return int(await connection.fetchval("SELECT drains FROM runs WHERE id = $1", uuid))
        finally:
            await connection.close()

    async def worker_ready(self, within: float = 90) -> None:
        deadline = time.monotonic() + within
        while not (await self.client().execute(POOL))["executorPool"]["workers"]:
            assert self.worker.process.poll() is None, f"ptw worker exited:\n{self.worker.output()}"
            assert time.monotonic() < deadline, f"no worker after {within} s:\n{self.worker.output()}"
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def stack(production: Production) -> Iterator[Stack]:
    direct = make_url(production.env["PTW_DATABASE_URL"])
    proxy = PostgresProxy(direct.host or "127.0.0.1", direct.port or 5432)
    production.env.update(FAST)
    production.env["PTW_DATABASE_URL"] = direct.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        yield Stack(production, proxy, direct.set(drivername="postgresql").render_as_string(False))
    finally:
        production.stop()  # before the proxy goes: their last writes pass through it
        proxy.close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first found first."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def kill_machine(worker: Worker) -> None:
    """SIGKILL the worker and its children at once, as when its machine dies."""
    for pid in [worker.process.pid, *descendants(worker.process.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    worker.process.wait(10)


async def test_a_run_past_its_timeout_fails_with_a_clear_error(stack: Stack) -> None:
    await stack.worker_ready()
    run_id = await stack.start("steps", {"steps": 1000, "step_seconds": 0.1}, timeoutSeconds=2)
    run = await stack.finished(run_id, within=30)
    assert (run["status"], run["error"], run["attempt"]) == ("FAILED", "timed out after 2 s", 1)
    attempts, lines = await stack.story(run_id)
    assert [(a["attempt"], a["outcome"], a["reason"]) for a in attempts] == [
        (1, "TIMED_OUT", "timed out after 2 s")
    ]
    assert attempts[0]["executor"] and attempts[0]["device"] == "cpu"
    assert ("system", "timed out after 2 s: stopping the run") in lines
    cancel = "mutation($id: ID!) { cancelRun(id: $id) { status } }"
    with pytest.raises(GraphQLError) as refused:  # a finished run is not cancelled again
        await stack.client().execute(cancel, {"id": run_id})
    assert refused.value.code == "CONFLICT"


async def test_a_run_no_executor_can_take_says_so_and_stays_queued(stack: Stack) -> None:
    run_id = await stack.start("steps", {"steps": 1}, gpus=1)  # no GPU worker here
    run = await stack.until(run_id, lambda r: r["error"] is not None, 20, "no waiting reason")
    assert run["status"] == "QUEUED"
    assert "no executor for resource class 'gpu'" in run["error"]
    cancel = "mutation($id: ID!) { cancelRun(id: $id) { status } }"
    assert (await stack.client().execute(cancel, {"id": run_id}))["cancelRun"]["status"] == "CANCELLED"


async def test_a_subscriber_resumes_on_another_replica_from_its_cursor_without_gap_or_duplicate(
    stack: Stack,
) -> None:
    await stack.worker_ready()
    run_id = await stack.start("steps", {"steps": 60, "step_seconds": 0.05, "every": 100})
    received: list[int] = []
    cursor: str | None = None
    subscription = stack.b.client().subscribe(RUN_METRICS, {"id": run_id, "after": None})
    try:
        while len(received) < 10:
            batch = (await subscription.__anext__())["runMetrics"]
            received += [p["step"] for p in batch["points"]]
            cursor = batch["cursor"]
        stack.b.process.kill()  # the replica dies under its subscriber ...
        stack.b.process.wait(10)
        while True:  # ... which reads what reached it before the connection dropped
            batch = (await subscription.__anext__())["runMetrics"]
            received += [p["step"] for p in batch["points"]]
            cursor = batch["cursor"]
    except (StopAsyncIteration, OSError, websockets.ConnectionClosed):
        pass
    finally:
        await subscription.aclose()
    # The client reconnects to the other replica with the cursor of the last batch it got.
    async for data in stack.a.client().subscribe(RUN_METRICS, {"id": run_id, "after": cursor}):
        received += [p["step"] for p in data["runMetrics"]["points"]]
    assert sorted(received) == list(range(60)), "a point was missed or delivered twice"
    assert (await stack.finished(run_id))["status"] == "SUCCEEDED"


async def test_a_database_outage_buffers_metrics_and_readyz_reports_it(stack: Stack) -> None:
    await stack.worker_ready()
    run_id = await stack.start("steps", {"steps": 60, "step_seconds": 0.1, "every": 100})
    await stack.until(run_id, lambda r: r["status"] == "RUNNING", 30, "not running")
    await asyncio.sleep(1.0)
    stack.proxy.cut()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            deadline = time.monotonic() + 10
            while (ready := await http.get(f"{stack.a.url}/readyz")).status_code != 503:
                assert time.monotonic() < deadline, ready.text
                await asyncio.sleep(0.2)
            assert ready.json()["database"] is False and ready.json()["redis"] is True
            await asyncio.sleep(3.0)  # the run goes on logging meanwhile
    finally:
        stack.proxy.restore()
    async with httpx.AsyncClient(timeout=10) as http:
        deadline = time.monotonic() + 15
        while (ready := await http.get(f"{stack.a.url}/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            await asyncio.sleep(0.2)
    run = await stack.finished(run_id)
    assert (run["status"], run["attempt"]) == ("SUCCEEDED", 1), run
    series = await stack.series(run_id, 60)
    assert sorted(series) == list(range(60))


async def test_runs_queued_and_running_survive_redis_being_emptied(stack: Stack) -> None:
    await stack.worker_ready()
    running = await stack.start("steps", {"steps": 30, "step_seconds": 0.1})
    await stack.until(running, lambda r: r["status"] == "RUNNING", 30, "not running")
    queued = [await stack.start("steps", {"steps": 5, "step_seconds": 0.01}) for _ in range(2)]
    await drop_redis_keys(stack.production.prefix)  # this stack's keys and its arq jobs; no other's
    for run_id in [running, *queued]:
        run = await stack.finished(run_id, within=60)
        assert run["status"] == "SUCCEEDED", run
        assert run["attempt"] == 1  # nothing was lost, so nothing was retried


async def test_a_child_that_crashes_every_time_fails_after_max_attempts(stack: Stack) -> None:
    await stack.worker_ready()
    run_id = await stack.start("crashes", {})
    run = await stack.finished(run_id, within=90)
    assert (run["status"], run["attempt"]) == ("FAILED", 3), run
    assert run["error"].startswith("gave up after 3 attempts: the run's process exited with code 3")
    await asyncio.sleep(2.0)  # no fourth attempt comes
    assert (await stack.run(run_id))["attempt"] == 3
    attempts, lines = await stack.story(run_id)
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(n, "CRASHED") for n in (1, 2, 3)]
    for attempt in attempts:
        assert attempt["reason"].startswith("the run's process exited with code 3 without a result")
        assert f"attempt {attempt['attempt']} going down" in attempt["reason"]  # its stderr, kept
    for n in (1, 2, 3):  # every attempt's output is there after the end, with what the system said
        assert ("stderr", f"attempt {n} going down") in lines
    assert any(s == "system" and x.startswith("attempt 1: the run's process exited") for s, x in lines)


async def test_a_run_whose_worker_is_killed_resumes_on_another_from_its_last_checkpoint(
    stack: Stack,
) -> None:
    await stack.worker_ready()
    run_id = await stack.start("steps", {"steps": 40, "step_seconds": 0.1, "every": 5})
    run = await stack.until(
        run_id, lambda r: any(c["step"] >= 14 for c in r["checkpoints"]), 60, "no checkpoint at step 14"
    )
    seen = max(c["step"] for c in run["checkpoints"])
    killed = stack.worker
    kill_machine(killed)
    stack.new_worker()
    run = await stack.finished(run_id, within=90)
    assert run["status"] == "SUCCEEDED", f"{run}\n{killed.output()}"
    assert run["attempt"] >= 2
    # Retention (the last 3 by default) has since deleted attempt 1's checkpoints: attempt 2 says which it
    # loaded, no earlier than the last one seen before the kill; the values below prove where it resumed.
    last = run["summary"]["resumed_from"] - 1
    assert last >= seen >= 14
    series = await stack.series(run_id, 40)
    assert sorted(series) == list(range(40)), "a step is missing"
    for step, value in series.items():  # steps logged again keep the newest attempt's value
        assert value == value_at(step, 1 if step <= last else run["attempt"]), step
    assert await stack.drains(run_id) == 0
    attempts, lines = await stack.story(run_id)
    assert attempts[0]["outcome"] == "LOST" and "lost" in attempts[0]["reason"], attempts
    assert attempts[-1]["outcome"] == "SUCCEEDED" and len(attempts) == run["attempt"]
    assert attempts[0]["executor"] != attempts[-1]["executor"]  # the new worker took it
    assert any(s == "system" and x.startswith("attempt 1: ") and "lost" in x for s, x in lines), lines


async def test_a_stopped_worker_hands_its_run_back_without_counting_a_failure(stack: Stack) -> None:
    await stack.worker_ready()
    run_id = await stack.start("steps", {"steps": 300, "step_seconds": 0.05, "every": 1000})
    await stack.until(run_id, lambda r: r["status"] == "RUNNING", 30, "not running")
    await asyncio.sleep(1.5)
    stopping = stack.worker
    asked = time.monotonic()
    assert stopping.stop() == 0, stopping.output()  # SIGTERM
    assert time.monotonic() - asked < 5  # the code saw ctx.stopping: no need for the grace period
    run = await stack.run(run_id)
    assert (run["status"], run["attempt"]) == ("QUEUED", 2), run
    assert run["error"] is None or run["error"].startswith("waiting:")  # not a failed attempt's
    assert await stack.drains(run_id) == 1
    [checkpoint] = run["checkpoints"]  # the one ctx.stopping made it save
    stack.new_worker()
    run = await stack.finished(run_id, within=90)
    assert run["status"] == "SUCCEEDED", run
    assert run["summary"]["resumed_from"] == checkpoint["step"] + 1 > 1
    series = await stack.series(run_id, 300)
    assert sorted(series) == list(range(300))
    attempts, lines = await stack.story(run_id)
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "DRAINED"), (2, "SUCCEEDED")]
    assert attempts[0]["reason"] == "its worker is shutting down"
    assert any(s == "system" and "queued again as attempt 2" in x for s, x in lines), lines
