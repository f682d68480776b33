"""``ptw run --watch``: start a run, follow its status and metrics live, then print its summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ptw.client import GraphQLClient, GraphQLError

console = Console()
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "PRUNED"}

WORKFLOW = "query($name: String!) { workflow(name: $name) { id name } }"
START = """mutation($input: StartRunInput!) { startRun(input: $input) { id status } }"""
RUN = """query($id: ID!) {
  run(id: $id) { id status error summary device attempt latestMetrics { key step value } }
}"""
EVENTS = "subscription($id: ID!) { runEvents(runId: $id) { kind status message stream } }"
METRICS = "subscription($id: ID!) { runMetrics(runId: $id) { cursor points { key step value } } }"


async def start_and_watch(
    client: GraphQLClient, workflow: str, params: dict[str, Any], project: str | None, watch: bool
) -> str | None:
    found = (await client.execute(WORKFLOW, {"name": workflow}))["workflow"]
    if found is None:
        raise GraphQLError(
            [{"message": f"no workflow named {workflow!r}", "extensions": {"code": "NOT_FOUND"}}]
        )
    run_input: dict[str, Any] = {"workflowId": found["id"], "params": params}
    if project:
        run_input["projectId"] = project
    run = (await client.execute(START, {"input": run_input}))["startRun"]
    console.print(f"Started run [bold]{run['id']}[/] of {workflow} ({run['status']})")
    if not watch:
        return None
    return await _watch(client, run["id"])


async def _watch(client: GraphQLClient, run_id: str) -> str:
    view = _RunView(run_id)
    with Live(view.render(), console=console, refresh_per_second=8) as live:
        metrics = asyncio.create_task(_follow_metrics(client, run_id, view, live))
        try:
            async for data in client.subscribe(EVENTS, {"id": run_id}):
                view.on_event(data["runEvents"])
                live.update(view.render())
                if view.status in TERMINAL:
                    break
        finally:
            metrics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await metrics
    final = (await client.execute(RUN, {"id": run_id}))["run"]
    _print_summary(final)
    return str(final["status"])


async def _follow_metrics(client: GraphQLClient, run_id: str, view: _RunView, live: Live) -> None:
    async for data in client.subscribe(METRICS, {"id": run_id}):
        for point in data["runMetrics"]["points"]:
            view.latest[point["key"]] = (point["step"], point["value"])
        live.update(view.render())


class _RunView:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.status = "QUEUED"
        self.latest: dict[str, tuple[int, float]] = {}
        self.lines: list[str] = []

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("status"):
            self.status = event["status"]
        if event.get("message"):
            self.lines = [*self.lines, event["message"]][-5:]

    def render(self) -> Group:
        table = Table(title=f"run {self.run_id} — {self.status}", expand=False)
        table.add_column("metric")
        table.add_column("step", justify="right")
        table.add_column("value", justify="right")
        for key in sorted(self.latest):
            step, value = self.latest[key]
            table.add_row(key, str(step), f"{value:.6g}")
        return Group(table, Text("\n".join(self.lines), style="dim"))


def _print_summary(run: dict[str, Any]) -> None:
    table = Table(title=f"run {run['id']}: {run['status']}")
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
