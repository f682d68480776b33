"""``ptw optimize``: start a search or a tuning, and with ``--watch`` follow its trials in a live table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ptw.client import GraphQLClient, GraphQLError
from ptw.commands.common import short
from ptw.watch import WORKFLOW

console = Console()
RESULT_FIELDS = "id number state value config metrics run { status }"
START = """mutation($input: StartOptimizationInput!) {
  startOptimization(input: $input) { id status kind }
}"""
PROGRESS = f"""subscription($id: ID!) {{
  optimizationProgress(optimizationId: $id) {{
    progress step value
    optimization {{ id status error objective direction }}
    result {{ {RESULT_FIELDS} }}
  }}
}}"""
FINAL = f"""query($id: ID!) {{
  optimization(id: $id) {{
    id status error objective direction
    results(first: 1000) {{ edges {{ node {{ {RESULT_FIELDS} }} }} }}
    best {{ {RESULT_FIELDS} }}
  }}
}}"""
_STYLE = {"COMPLETE": "green", "PRUNED": "yellow", "FAILED": "red", "RUNNING": "cyan", "QUEUED": "dim"}
# A trial's result is RUNNING from the moment its run is created; until that run starts it is waiting.
_WAITING = {"QUEUED": "QUEUED", "STARTING": "QUEUED"}


def read_space(space: str | None) -> Any:
    """JSON given inline, or ``@path`` to a JSON file."""
    if space is None:
        return None
    text = Path(space[1:]).read_text(encoding="utf-8") if space.startswith("@") else space
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphQLError(
            [{"message": f"the space is not JSON: {exc}", "extensions": {"code": "BAD_USER_INPUT"}}]
        ) from None


async def start_optimization(
    client: GraphQLClient, workflow: str, fields: dict[str, Any], project: str | None, watch: bool
) -> str | None:
    found = (await client.execute(WORKFLOW, {"name": workflow}))["workflow"]
    if found is None:
        raise GraphQLError(
            [{"message": f"no workflow named {workflow!r}", "extensions": {"code": "NOT_FOUND"}}]
        )
    start_input = {"workflowId": found["id"], **{k: v for k, v in fields.items() if v is not None}}
    if project:
        start_input["projectId"] = project
    started = (await client.execute(START, {"input": start_input}))["startOptimization"]
    console.print(f"Started optimization [bold]{short(started['id'])}[/] of {workflow} ({started['kind']})")
    if not watch:
        return None
    return await watch_optimization(client, started["id"])


async def watch_optimization(client: GraphQLClient, optimization_id: str) -> str:
    view = TrialTable(optimization_id)
    with Live(view.render(), console=console, refresh_per_second=4) as live:
        async for data in client.subscribe(PROGRESS, {"id": optimization_id}):
            event = data["optimizationProgress"]
            view.on_event(event)
            live.update(view.render())
            if event["progress"] == "FINISHED" or view.status in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
    final = (await client.execute(FINAL, {"id": optimization_id}))["optimization"]
    view.status, view.error = final["status"], final.get("error")
    view.trials = {r["number"] if r["number"] is not None else i: r for i, r in enumerate(_nodes(final))}
    view.best_id = (final.get("best") or {}).get("id")
    console.print(view.render())
    return str(final["status"])


@dataclass
class TrialTable:
    """The trials of one optimization as events tell them: state, value, params; the best in bold."""

    optimization_id: str
    status: str = "QUEUED"
    error: str | None = None
    objective: str | None = None
    best_id: str | None = None
    trials: dict[int, dict[str, Any]] = field(default_factory=dict)

    def on_event(self, event: dict[str, Any]) -> None:
        optimization = event["optimization"]
        self.status, self.error = optimization["status"], optimization.get("error")
        self.objective = optimization.get("objective")
        result = event.get("result")
        if event["progress"] in ("NEW_BEST", "SNAPSHOT", "FINISHED") and result:
            self.best_id = result["id"]
        if result is None:
            return
        number = result["number"] if result["number"] is not None else len(self.trials)
        if event["progress"] == "TRIAL_REPORTED":
            result = {**self.trials.get(number, {}), **result, "value": event["value"], "step": event["step"]}
        self.trials[number] = {**self.trials.get(number, {}), **result}

    def render(self) -> Table:
        title = f"optimization {short(self.optimization_id)} — {self.status}"
        table = Table(title=title, caption=self.error, caption_style="red")
        table.add_column("trial", justify="right")
        table.add_column("state")
        table.add_column(self.objective or "value", justify="right")
        table.add_column("params")
        for number in sorted(self.trials):
            trial = self.trials[number]
            value = trial.get("value")
            shown = f"{value:.6g}" if isinstance(value, int | float) else "-"
            if trial.get("state") == "RUNNING" and trial.get("step") is not None:
                shown += f" @{trial['step']}"
            state = _shown_state(trial)
            best = trial.get("id") == self.best_id
            table.add_row(
                f"{'★ ' if best else ''}{number}",
                f"[{_STYLE.get(state, 'white')}]{state}[/]",
                shown,
                json.dumps(trial.get("config") or {}, sort_keys=True),
                style="bold" if best else None,
            )
        return table


def _shown_state(trial: dict[str, Any]) -> str:
    state = str(trial.get("state", "?"))
    run_status = (trial.get("run") or {}).get("status")
    return _WAITING.get(run_status, state) if state == "RUNNING" else state


def _nodes(optimization: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in optimization["results"]["edges"]]
