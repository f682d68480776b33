"""``ptw run`` and ``ptw runs list|show|logs|cancel``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ptw.client import GraphQLClient, GraphQLError
from ptw.commands.common import (
    EXIT_RUN_FAILED,
    Json,
    Key,
    Project,
    Url,
    call,
    connect,
    out,
    parse_params,
    print_json,
    project_id,
    when,
    workflow_id,
)

app = typer.Typer(help="Runs: list, show, logs, cancel.", no_args_is_help=True)
STATUSES = ("QUEUED", "STARTING", "RUNNING", "CANCELLING", "SUCCEEDED", "FAILED", "CANCELLED", "PRUNED")
FIELDS = """id shortId name status tags external attempt device createdAt startedAt finishedAt error
  workflow { name } project { name }"""
LIST = f"""query($filter: RunFilter, $first: Int, $after: String) {{
  runs(filter: $filter, first: $first, after: $after) {{
    edges {{ node {{ {FIELDS} latestMetrics {{ key step value }} }} }}
    pageInfo {{ hasNextPage endCursor }} }} }}"""
SHOW = f"""query($id: ID!) {{ run(id: $id) {{ {FIELDS} params summary notes metricKeys
  latestMetrics {{ key step value }} checkpoints {{ step uri sizeBytes }} }} }}"""
TIMES = ("createdAt", "startedAt", "finishedAt")
CANCEL = "mutation($id: ID!) { cancelRun(id: $id) { id shortId status } }"
STORED_LOGS = """query($id: ID!, $after: String) { run(id: $id) { status
  logs(first: 1000, after: $after) { edges { node { stream line at } }
  pageInfo { hasNextPage endCursor } } } }"""
EVENTS = "subscription($id: ID!) { runEvents(runId: $id) { kind status message stream at } }"


@app.command("list")
def list_runs(
    status: Annotated[list[str] | None, typer.Option("--status", help="Only runs in this status.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only runs of this workflow (a name).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Only runs with this tag.")] = None,
    project: Project = None,
    limit: Annotated[int, typer.Option(help="At most this many runs, newest first.")] = 50,
    json: Json = False,
    url: Url = None,
    key: Key = None,
) -> None:
    """Runs of your projects, newest first."""
    wanted = [s.upper() for s in status or []]
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        from ptw.commands.common import EXIT_USAGE, fail

        fail(EXIT_USAGE, f"unknown status {bad[0]!r}: use one of {', '.join(STATUSES)}")
    client = connect(url, key)
    runs = call(client, _list(client, wanted, workflow, tag or [], project, limit))
    if json:
        print_json(runs)
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "name", "workflow", "status", "created", "tags", "latest"):
        table.add_column(column)
    for run in runs:
        latest = ", ".join(f"{p['key']}={p['value']:.4g}" for p in run["latestMetrics"][:3])
        table.add_row(
            run["shortId"],
            run["name"],
            run["workflow"]["name"],
            run["status"],
            when(run["createdAt"]),
            ",".join(run["tags"]),
            latest,
        )
    out.print(table)


async def _list(
    client: GraphQLClient,
    statuses: list[str],
    workflow: str | None,
    tags: list[str],
    project: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    run_filter: dict[str, Any] = {}
    if statuses:
        run_filter["status"] = statuses
    run_filter["projectId"] = await project_id(client, project)
    if workflow:
        run_filter["workflowId"] = await workflow_id(client, workflow, run_filter["projectId"])
    # Tags are matched here, page by page, until the server's run filter takes them.
    found: list[dict[str, Any]] = []
    after = None
    while len(found) < limit:
        page = (await client.execute(LIST, {"filter": run_filter, "first": 100, "after": after}))["runs"]
        found += [e["node"] for e in page["edges"] if set(tags) <= set(e["node"]["tags"])]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    return found[:limit]


@app.command("show")
def show(
    run: Annotated[str, typer.Argument(help="The run's short id (as the web UI shows it) or id.")],
    json: Json = False,
    url: Url = None,
    key: Key = None,
) -> None:
    """Everything about one run: status, params, summary, latest metrics, checkpoints."""
    client = connect(url, key)
    found = call(client, client.execute(SHOW, {"id": run}))["run"]
    if json:
        print_json(found)
        return
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("id", f"{found['shortId']}  ({found['id']})"),
        ("name", found["name"]),
        ("workflow", found["workflow"]["name"] + ("  (tracked by ptw.init)" if found["external"] else "")),
        ("project", found["project"]["name"]),
        ("status", found["status"]),
        ("attempt", str(found["attempt"])),
        ("device", found["device"] or "—"),
        (
            "created / started / finished",
            " / ".join(when(found[k]) for k in TIMES),
        ),
        ("tags", ", ".join(found["tags"]) or "—"),
        ("params", _compact(found["params"])),
        ("summary", _compact(found["summary"])),
    ]
    rows += [(f"{p['key']} @ {p['step']}", f"{p['value']:.6g}") for p in found["latestMetrics"]]
    rows += [
        (f"checkpoint @ {c['step']}", f"{c['uri']} ({c['sizeBytes']:,} bytes)") for c in found["checkpoints"]
    ]
    if found["notes"]:
        rows.append(("notes", found["notes"]))
    if found["error"]:
        rows.append(("error", found["error"][-2000:]))
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)


def _compact(value: Any) -> str:
    import json as json_module

    return "—" if value in (None, {}) else json_module.dumps(value)


@app.command("logs")
def logs(
    run: Annotated[str, typer.Argument(help="The run's short id or id.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")
    ] = False,
    url: Url = None,
    key: Key = None,
) -> None:
    """A run's output lines: the stored ones (``Run.logs``), then with --follow the live ones
    (``runEvents``). A server that does not store output yet gives only the live lines."""
    client = connect(url, key)
    call(client, _logs(client, run, follow))


async def _logs(client: GraphQLClient, run: str, follow: bool) -> None:
    stored = True
    after = None
    if follow:  # runEvents replays the stored lines before the live ones: read them once, there
        await _follow(client, run)
        return
    try:
        while True:
            found = (await client.execute(STORED_LOGS, {"id": run, "after": after}))["run"]
            for edge in found["logs"]["edges"]:
                line = edge["node"]
                out.print(f"[dim]{when(line['at'])} {line['stream']}[/] {line['line']}", soft_wrap=True)
            if not found["logs"]["pageInfo"]["hasNextPage"]:
                break
            after = found["logs"]["pageInfo"]["endCursor"]
    except GraphQLError as error:
        if error.code != "GRAPHQL_VALIDATION_FAILED" and "logs" not in str(error):
            raise
        stored = False  # this server keeps no output: only live lines can be shown
    if not follow and stored:
        out.print(f"[dim]status[/] {found['status']}")  # how the run stands after the lines it kept
        return
    if not stored and not follow:
        out.print("[dim]this server streams output live only: following the run (Ctrl-C stops)[/]")
    await _follow(client, run)


async def _follow(client: GraphQLClient, run: str) -> None:
    async for data in client.subscribe(EVENTS, {"id": run}):
        event = data["runEvents"]
        if event["kind"] == "LOG" and event["message"]:
            out.print(f"[dim]{when(event['at'])} {event['stream']}[/] {event['message']}", soft_wrap=True)
        elif event["kind"] == "STATUS":
            out.print(f"[dim]{when(event['at'])} status[/] {event['status']}")


@app.command("cancel")
def cancel(
    run: Annotated[str, typer.Argument(help="The run's short id or id.")],
    url: Url = None,
    key: Key = None,
) -> None:
    """Cancel a run: a queued one at once, a started one is stopped by its executor (or its ptw.init)."""
    client = connect(url, key)
    found = call(client, client.execute(CANCEL, {"id": run}))["cancelRun"]
    out.print(f"run {found['shortId']}: {found['status']}")


def start(
    workflow: Annotated[str, typer.Argument(help="Workflow name, e.g. digits-mlp.")],
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="key=value (JSON; a bare word is text)."),
    ] = None,
    watch: Annotated[bool, typer.Option(help="Follow the run live, then print its summary.")] = False,
    name: Annotated[str | None, typer.Option(help="A name for the run (default: a readable one).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag of the run.")] = None,
    project: Project = None,
    url: Url = None,
    key: Key = None,
) -> None:
    """Start a run of a workflow from the terminal (with --watch: live progress until it ends)."""
    from ptw.watch import start_and_watch

    params = parse_params(param or [])
    client = connect(url, key)

    async def go() -> str | None:
        workflow_ref = await workflow_id(client, workflow, await project_id(client, project))
        return await start_and_watch(
            client, workflow_ref, params, await project_id(client, project), watch, name, tag or []
        )

    try:
        status = call(client, go())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if status not in (None, "SUCCEEDED"):
        raise typer.Exit(EXIT_RUN_FAILED)
