"""``ptw run --watch``: start a run, follow its status, progress and output live, then print its summary.

Progress is the highest step logged, out of the run's ``steps`` (or ``max_steps``) param when it has one
(not ``epochs``: a workflow's steps need not be epochs);
elapsed time counts from the start of the run. Ctrl-C stops watching only: the run goes on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ptw.client import GraphQLClient

console = Console(highlight=False)
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "PRUNED"}
OUTPUT_LINES = 8

WORKFLOW = "query($name: String!) { workflow(name: $name) { id name } }"

START = """mutation($input: StartRunInput!) { startRun(input: $input) { id shortId name status params } }"""
RUN = """query($id: ID!) {
  run(id: $id) { id shortId name status error summary device attempt latestMetrics { key step value } }
}"""
EVENTS = "subscription($id: ID!) { runEvents(runId: $id) { kind status message stream } }"
METRICS = "subscription($id: ID!) { runMetrics(runId: $id) { cursor points { key step value } } }"


async def start_and_watch(
    client: GraphQLClient,
    workflow_id: str,
    params: dict[str, Any],
    project_id: str | None,
    watch: bool,
    name: str | None = None,
    tags: list[str] | None = None,
) -> str | None:
    run_input: dict[str, Any] = {"workflowId": workflow_id, "params": params, "tags": tags or []}
    if project_id:
        run_input["projectId"] = project_id
    if name:
        run_input["name"] = name
    run = (await client.execute(START, {"input": run_input}))["startRun"]
    console.print(f"Started run [bold]{run['shortId']}[/] ({run['name']}, {run['status']})")
    if not watch:
        return None
    try:
        return await _watch(client, run)
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task
        short = run["shortId"]
        console.print(
            f"Stopped watching. Run {short} goes on: `ptw runs cancel {short}` cancels it, "
            f"`ptw runs logs {short} --follow` follows its output."
        )
        raise


def total_steps(params: dict[str, Any]) -> int | None:
    for name in ("steps", "max_steps"):
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


async def _watch(client: GraphQLClient, run: dict[str, Any]) -> str:
    view = RunView(run["shortId"], run["name"], total_steps(run.get("params") or {}))
    with Live(view.render(), console=console, refresh_per_second=4) as live:
        metrics = asyncio.create_task(_follow_metrics(client, run["id"], view, live))
        ticker = asyncio.create_task(_tick(view, live))
        try:
            async for data in client.subscribe(EVENTS, {"id": run["id"]}):
                view.on_event(data["runEvents"])
                live.update(view.render())
                if view.status in TERMINAL:
                    break
        finally:
            for task in (metrics, ticker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    final = (await client.execute(RUN, {"id": run["id"]}))["run"]
    print_summary(final)
    return str(final["status"])


async def _tick(view: RunView, live: Live) -> None:
    while True:  # the elapsed time moves even when nothing is logged
        await asyncio.sleep(1)
        live.update(view.render())


async def _follow_metrics(client: GraphQLClient, run_id: str, view: RunView, live: Live) -> None:
    async for data in client.subscribe(METRICS, {"id": run_id}):
        for point in data["runMetrics"]["points"]:
            view.latest[point["key"]] = (point["step"], point["value"])
        live.update(view.render())


class RunView:
    def __init__(self, short_id: str, name: str, total: int | None) -> None:
        self.short_id, self.name, self.total = short_id, name, total
        self.status = "QUEUED"
        self.running_since: float | None = None
        self.latest: dict[str, tuple[int, float]] = {}
        self.lines: list[str] = []

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("status"):
            self.status = event["status"]
            if self.status == "RUNNING" and self.running_since is None:
                self.running_since = time.monotonic()
        if event.get("kind") == "LOG" and event.get("message"):
            self.lines = [*self.lines, event["message"]][-OUTPUT_LINES:]

    def progress(self) -> str:
        step = max((s for s, _ in self.latest.values()), default=None)
        done = "—" if step is None else f"step {step}"
        if step is not None and self.total:
            done += f" / {self.total}"
        elapsed = 0.0 if self.running_since is None else time.monotonic() - self.running_since
        minutes, seconds = divmod(int(elapsed), 60)
        return f"{done}   elapsed {minutes}:{seconds:02d}"

    def render(self) -> Group:
        table = Table(title=f"run {self.short_id} ({self.name}) — {self.status}   {self.progress()}")
        table.add_column("metric")
        table.add_column("step", justify="right")
        table.add_column("value", justify="right")
        for key in sorted(self.latest):
            step, value = self.latest[key]
            table.add_row(key, str(step), f"{value:.6g}")
        return Group(table, Text("\n".join(self.lines), style="dim"))


def print_summary(run: dict[str, Any]) -> None:
    table = Table(title=f"run {run['shortId']}: {run['status']}")
    table.add_column("field")
    table.add_column("value")
    table.add_row("device", str(run.get("device")))
    table.add_row("attempt", str(run.get("attempt")))
    for key, value in sorted((run.get("summary") or {}).items()):
        table.add_row(f"summary.{key}", json.dumps(value) if not isinstance(value, str) else value)
    for point in run.get("latestMetrics") or []:
        table.add_row(f"{point['key']} @ {point['step']}", f"{point['value']:.6g}")
    if run.get("error"):
        table.add_row("error", Text(run["error"], style="red"))
    console.print(table)
