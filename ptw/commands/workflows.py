"""``ptw workflows register|list|show``."""

from __future__ import annotations

import json as json_module
from typing import Annotated, Any

import typer
from rich.table import Table

from ptw.client import GraphQLClient
from ptw.commands.common import (
    EXIT_USAGE,
    Json,
    Key,
    Project,
    Url,
    call,
    connect,
    fail,
    named_workflow,
    out,
    print_json,
    project_id,
    read_json_option,
)

app = typer.Typer(help="Workflows: register, list, show.", no_args_is_help=True)
FIELDS = "id name entrypoint builtin paramsSchema defaults"
LIST = f"""query($after: String) {{ workflows(first: 200, after: $after) {{
  edges {{ node {{ {FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
SHOW = f"query($name: String!, $p: ID) {{ workflow(name: $name, projectId: $p) {{ {FIELDS} }} }}"
REGISTER = f"mutation($i: RegisterWorkflowInput!) {{ registerWorkflow(input: $i) {{ {FIELDS} }} }}"


@app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="Lower-case name, e.g. resnet-train.")],
    entrypoint: Annotated[str, typer.Argument(help="package.module:function, importable by the executors.")],
    schema: Annotated[str | None, typer.Option(help="JSON schema of the params (or @file.json).")] = None,
    defaults: Annotated[str | None, typer.Option(help="Default params (JSON or @file.json).")] = None,
    gpus: Annotated[int | None, typer.Option(help="GPUs per node.")] = None,
    timeout: Annotated[int | None, typer.Option(help="Seconds before a run is stopped.")] = None,
    project: Project = None,
    json: Json = False,
    url: Url = None,
    key: Key = None,
) -> None:
    """Register (or update) a workflow: its entrypoint, params schema and defaults."""
    registration: dict[str, Any] = {"name": name, "entrypoint": entrypoint}
    for field, value in (("paramsSchema", schema), ("defaults", defaults)):
        parsed = read_json_option(value, f"--{'schema' if field == 'paramsSchema' else field}")
        if parsed is not None:
            if not isinstance(parsed, dict):
                fail(EXIT_USAGE, f"{field} must be a JSON object")
            registration[field] = parsed
    registration.update({k: v for k, v in (("gpus", gpus), ("timeoutSeconds", timeout)) if v is not None})
    client = connect(url, key)

    async def go() -> dict[str, Any]:
        registration["projectId"] = await project_id(client, project)
        return dict((await client.execute(REGISTER, {"i": registration}))["registerWorkflow"])

    found = call(client, go())
    if json:
        print_json(found)
    else:
        out.print(f"registered workflow [bold]{found['name']}[/] → {found['entrypoint']}")


@app.command("list")
def list_workflows(json: Json = False, url: Url = None, key: Key = None) -> None:
    """The built-in workflows and your projects' own."""
    client = connect(url, key)
    found = call(client, _all(client))
    if json:
        print_json(found)
        return
    table = Table(box=None, header_style="bold")
    for column in ("name", "entrypoint", "params", ""):
        table.add_column(column)
    for workflow in found:
        names = ", ".join(sorted((workflow["paramsSchema"] or {}).get("properties", {})))
        table.add_row(
            workflow["name"], workflow["entrypoint"], names, "built-in" if workflow["builtin"] else ""
        )
    out.print(table)


async def _all(client: GraphQLClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await client.execute(LIST, {"after": after}))["workflows"]
        found += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The workflow's name.")],
    project: Project = None,
    json: Json = False,
    url: Url = None,
    key: Key = None,
) -> None:
    """A workflow's entrypoint, params schema and defaults."""
    client = connect(url, key)

    async def go() -> dict[str, Any]:
        return await named_workflow(client, SHOW, name, await project_id(client, project))

    found = call(client, go())
    if json:
        print_json(found)
        return
    out.print(
        f"[bold]{found['name']}[/]  {found['entrypoint']}" + ("  (built-in)" if found["builtin"] else "")
    )
    out.print("defaults: " + json_module.dumps(found["defaults"]))
    out.print("params schema: " + json_module.dumps(found["paramsSchema"], indent=2))
