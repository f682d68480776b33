"""``ptw projects list|create``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ptw.commands.common import PROJECTS, Json, Key, Url, call, connect, out, print_json, short

app = typer.Typer(help="Projects: list, create, quota.", no_args_is_help=True)
CREATE = "mutation($name: String!) { createProject(name: $name) { id name role } }"


@app.command("list")
def list_projects(json: Json = False, url: Url = None, key: Key = None) -> None:
    """The projects of your key and your role in each."""
    client = connect(url, key)
    found = call(client, client.execute(PROJECTS))["viewer"]["projects"]
    if json:
        print_json(found)
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "name", "role"):
        table.add_column(column)
    for project in found:
        table.add_row(short(project["id"]), project["name"], project["role"])
    out.print(table)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The new project's name.")],
    json: Json = False,
    url: Url = None,
    key: Key = None,
) -> None:
    """Create a project; your key becomes its admin."""
    client = connect(url, key)
    found = call(client, client.execute(CREATE, {"name": name}))["createProject"]
    if json:
        print_json(found)
    else:
        out.print(f"created project [bold]{found['name']}[/] ({short(found['id'])})")


@app.command("quota")
def quota(
    project: Annotated[str, typer.Argument(help="Project name.")],
    queued_runs: Annotated[
        int | None, typer.Option(help="Runs it may have waiting (default: PTW_MAX_QUEUED_RUNS).")
    ] = None,
    optimizations: Annotated[
        int | None, typer.Option(help="Unfinished optimizations (default: PTW_MAX_OPTIMIZATIONS).")
    ] = None,
    running_runs: Annotated[
        int | None,
        typer.Option(help="Runs it may have started at once (default: PTW_MAX_RUNNING_RUNS, unlimited)."),
    ] = None,
) -> None:
    """Set a project's quotas straight against the configured database (the operator's command); an
    option left out goes back to the deployment's default."""
    from ptw.commands.server import load_settings, run_or_exit

    async def set_quota() -> None:
        from ptw.infra.bootstrap import bootstrap

        services = await bootstrap(load_settings())
        try:
            found = await services.access.set_quota(
                project,
                max_queued_runs=queued_runs,
                max_optimizations=optimizations,
                max_running_runs=running_runs,
            )
        finally:
            await services.aclose()
        settings = services.settings
        running = services.runs.quotas.running_runs(found)
        print(
            f"{project}: {found.max_queued_runs or settings.max_queued_runs} queued runs, "
            f"{found.max_optimizations or settings.max_optimizations} unfinished optimizations, "
            f"{'unlimited' if running is None else running} running runs"
        )

    run_or_exit(set_quota())
