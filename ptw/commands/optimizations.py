"""``ptw optimize`` and ``ptw optimizations list|show|cancel``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ptw.client import GraphQLClient
from ptw.commands.common import (
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    Json,
    Key,
    Project,
    Url,
    call,
    connect,
    fail,
    out,
    parse_params,
    pick,
    print_json,
    project_id,
    short,
    when,
)

app = typer.Typer(help="Optimizations (searches and tunings): list, show, cancel.", no_args_is_help=True)
FIELDS = """id kind status objective direction sampler pruner maxTrials maxParallel error createdAt
  workflow { name }"""
LIST = f"""query($after: String) {{ optimizations(first: 200, after: $after) {{
  edges {{ node {{ {FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
SHOW = f"""query($id: ID!) {{ optimization(id: $id) {{ {FIELDS} space
  results(first: 1000) {{ edges {{ node {{ number state value config run {{ shortId }} }} }} }}
  best {{ number value config }} }} }}"""
CANCEL = "mutation($id: ID!) { cancelOptimization(id: $id) { id status } }"


async def _all(client: GraphQLClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await client.execute(LIST, {"after": after}))["optimizations"]
        found += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def _resolve(client: GraphQLClient, ref: str) -> str:
    return str(pick(ref, await _all(client), "optimization", name_field=None)["id"])


@app.command("list")
def list_optimizations(json: Json = False, url: Url = None, key: Key = None) -> None:
    """Searches and tunings of your projects."""
    client = connect(url, key)
    found = call(client, _all(client))
    if json:
        print_json(found)
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "workflow", "kind", "status", "objective", "created"):
        table.add_column(column)
    for o in found:
        objective = f"{o['objective']} ({o['direction'].lower()})" if o["objective"] else "—"
        table.add_row(
            short(o["id"]), o["workflow"]["name"], o["kind"], o["status"], objective, when(o["createdAt"])
        )
    out.print(table)


@app.command("show")
def show(
    optimization: Annotated[str, typer.Argument(help="Its short id (as listed) or id.")],
    json: Json = False,
    url: Url = None,
    key: Key = None,
) -> None:
    """An optimization with its trials and best result."""
    client = connect(url, key)

    async def go() -> dict[str, Any]:
        return dict(
            (await client.execute(SHOW, {"id": await _resolve(client, optimization)}))["optimization"]
        )

    found = call(client, go())
    if json:
        print_json(found)
        return
    out.print(
        f"[bold]{short(found['id'])}[/] {found['kind']} of {found['workflow']['name']}: {found['status']}"
    )
    if found["error"]:
        out.print(f"[red]{found['error']}[/]")
    table = Table(box=None, header_style="bold")
    for column in ("trial", "state", "value", "run", "config"):
        table.add_column(column)
    for edge in found["results"]["edges"]:
        r = edge["node"]
        value = "—" if r["value"] is None else f"{r['value']:.6g}"
        run = r["run"]["shortId"] if r["run"] else "—"
        table.add_row(str(r["number"]), r["state"], value, run, str(r["config"]))
    out.print(table)
    if found["best"]:
        out.print(
            f"best: trial {found['best']['number']} = {found['best']['value']} {found['best']['config']}"
        )


@app.command("cancel")
def cancel(
    optimization: Annotated[str, typer.Argument(help="Its short id or id.")],
    url: Url = None,
    key: Key = None,
) -> None:
    """Cancel an optimization: no trial starts any more, running ones are cancelled."""
    client = connect(url, key)

    async def go() -> dict[str, Any]:
        ident = await _resolve(client, optimization)
        return dict((await client.execute(CANCEL, {"id": ident}))["cancelOptimization"])

    found = call(client, go())
    out.print(f"optimization {short(found['id'])}: {found['status']}")


def start(
    workflow: Annotated[str, typer.Argument(help="Workflow name, e.g. digits-mlp.")],
    kind: Annotated[str, typer.Option(help="search (hyperparameters) or tuning (performance).")] = "search",
    space: Annotated[
        str | None,
        typer.Option(help='Search (required): the space as JSON or @file.json: {"lr": {"type": ...}}.'),
    ] = None,
    objective: Annotated[str | None, typer.Option(help="The metric a search optimizes.")] = None,
    direction: Annotated[str, typer.Option(help="maximize or minimize.")] = "maximize",
    sampler: Annotated[str, typer.Option(help="tpe, random, grid or cmaes.")] = "tpe",
    pruner: Annotated[str, typer.Option(help="median, successive_halving, hyperband or none.")] = "median",
    max_trials: Annotated[int, typer.Option(help="Trials of the search.")] = 20,
    max_parallel: Annotated[int, typer.Option(help="Trials running at once.")] = 2,
    time_budget: Annotated[
        int | None, typer.Option(help="Seconds after which no trial starts (running ones finish).")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="key=value every trial gets (JSON; a bare word is text)."),
    ] = None,
    watch: Annotated[bool, typer.Option(help="Follow the trials in a live table until the end.")] = False,
    project: Project = None,
    url: Url = None,
    key: Key = None,
) -> None:
    """Start a hyperparameter search (or a performance tuning) of a workflow from the terminal."""
    from ptw.commands.common import read_json_option
    from ptw.optimize import start_optimization

    kinds = {"search": "HYPERPARAMETER_SEARCH", "tuning": "PERFORMANCE_TUNING"}
    if kind not in kinds or direction.lower() not in ("maximize", "minimize"):
        fail(EXIT_USAGE, "--kind is search or tuning; --direction is maximize or minimize")
    search = kind == "search"
    if search and space is None:
        fail(
            EXIT_USAGE,
            "a search needs --space, e.g. "
            """--space '{"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": true}}'""",
        )
    fields = {
        "kind": kinds[kind],
        "space": read_json_option(space, "--space"),
        "params": parse_params(param or []) or None,
        "timeBudgetSeconds": time_budget,
    }
    if search:
        fields.update(
            objective=objective,
            direction=direction.upper(),
            sampler=sampler,
            pruner=pruner,
            maxTrials=max_trials,
            maxParallel=max_parallel,
        )
    client = connect(url, key)

    async def go() -> str | None:
        return await start_optimization(client, workflow, fields, await project_id(client, project), watch)

    status = call(client, go())
    if status not in (None, "SUCCEEDED"):
        raise typer.Exit(EXIT_RUN_FAILED)
