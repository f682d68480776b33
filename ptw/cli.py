"""The ``ptw`` command line: serve the product, manage keys and the database, start and watch runs."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ptw.domain.errors import DomainError
from ptw.domain.tenancy import Role
from ptw.infra.settings import Settings

app = typer.Typer(
    help="PyTorch-workflow: a GraphQL control plane for PyTorch training.", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
projects_app = typer.Typer(help="Projects (the operator's commands).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(projects_app, name="projects")
err = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    executors: Annotated[
        int | None,
        typer.Option(help="Local executor slots (0: serve the API alone). Default: PTW_EXECUTORS or 2."),
    ] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
) -> None:
    """Serve the GraphQL API (and GraphiQL) with local executors. No settings: embedded mode in ./.ptw."""
    from ptw.server import serve as run_server

    settings = _settings(executors=executors)
    _run_or_exit(run_server(settings, host, port, ssl_certfile, ssl_keyfile))


@app.command()
def worker(
    slots: Annotated[
        int | None,
        typer.Option(help="Runs at a time (one warm child process each). Default: PTW_WORKER_SLOTS or 1."),
    ] = None,
    autoscale: Annotated[
        bool, typer.Option(help="Supervise `ptw worker` processes that follow the queue depth.")
    ] = False,
    minimum: Annotated[int, typer.Option("--min", min=0, help="With --autoscale: fewest workers.")] = 0,
    maximum: Annotated[int, typer.Option("--max", min=1, help="With --autoscale: most workers.")] = 1,
    idle_timeout: Annotated[
        float, typer.Option(min=0, help="With --autoscale: seconds a worker stays idle before it drains.")
    ] = 60.0,
) -> None:
    """Run an executor on the production queue (PTW_REDIS_URL and PTW_DATABASE_URL) until SIGTERM/SIGINT;
    with --autoscale, a supervisor of workers instead, from --min (0: none while nothing waits) to --max."""
    settings = _settings(worker_slots=slots)
    if settings.embedded or not settings.resolved_database_url.startswith("postgresql"):
        err.print(
            "[red]`ptw worker` needs production mode[/]: "
            "set PTW_REDIS_URL and PTW_DATABASE_URL=postgresql+asyncpg://..."
        )
        raise typer.Exit(2)
    if autoscale:
        from ptw.autoscale import run_autoscaler
        from ptw.domain.executors import ScalingPolicy

        if minimum > maximum:
            err.print(f"[red]--min {minimum} is above --max {maximum}[/]")
            raise typer.Exit(2)
        policy = ScalingPolicy(minimum, maximum, idle_timeout, slots=settings.worker_slots)
        _run_or_exit(run_autoscaler(settings, policy))
        return
    from ptw.worker import run_worker

    _run_or_exit(run_worker(settings))


@keys_app.command("create")
def keys_create(
    project: Annotated[str, typer.Option(help="Project name; created if missing.")],
    role: Annotated[str, typer.Option(help="admin, member or viewer.")] = "admin",
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
) -> None:
    """Create an API key straight against the configured database. The key is the last line printed."""
    try:
        parsed = Role[role.upper()]
    except KeyError:
        err.print(f"[red]unknown role {role!r}[/]: use admin, member or viewer")
        raise typer.Exit(2) from None

    async def create() -> None:
        from ptw.infra.bootstrap import bootstrap

        services = await bootstrap(_settings())
        try:
            issued = await services.access.bootstrap_key(project, parsed, name=name)
        finally:
            await services.aclose()
        print(
            f"Created a {parsed.name.lower()} key for project {issued.project.name!r}. It is shown only once:"
        )
        print(issued.secret)

    _run_or_exit(create())


@projects_app.command("quota")
def projects_quota(
    project: Annotated[str, typer.Argument(help="Project name.")],
    queued_runs: Annotated[
        int | None, typer.Option(help="Runs it may have waiting (default: PTW_MAX_QUEUED_RUNS).")
    ] = None,
    optimizations: Annotated[
        int | None, typer.Option(help="Unfinished optimizations (default: PTW_MAX_OPTIMIZATIONS).")
    ] = None,
) -> None:
    """Set a project's quotas straight against the configured database; an option left out goes back
    to the deployment's default."""

    async def set_quota() -> None:
        from ptw.infra.bootstrap import bootstrap

        services = await bootstrap(_settings())
        try:
            quota = await services.access.set_quota(
                project, max_queued_runs=queued_runs, max_optimizations=optimizations
            )
        finally:
            await services.aclose()
        settings = services.settings
        print(
            f"{project}: {quota.max_queued_runs or settings.max_queued_runs} queued runs, "
            f"{quota.max_optimizations or settings.max_optimizations} unfinished optimizations"
        )

    _run_or_exit(set_quota())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations: the only command that migrates a shared database (embedded
    `ptw serve` migrates its own SQLite file on start; workers, production replicas and `ptw keys create`
    refuse to start until the schema is at head)."""

    async def upgrade() -> None:
        from ptw.infra.db.database import Database

        settings = _settings()
        database = Database(settings.resolved_database_url)
        try:
            await database.upgrade()
        finally:
            await database.dispose()
        print("database is up to date")

    _run_or_exit(upgrade())


@app.command("run")
def run(
    workflow: Annotated[str, typer.Argument(help="Workflow name, e.g. digits-mlp.")],
    param: Annotated[
        list[str] | None, typer.Option("-p", "--param", help="key=value (value parsed as JSON).")
    ] = None,
    watch: Annotated[bool, typer.Option(help="Follow the run live, then print its summary.")] = False,
    project: Annotated[str | None, typer.Option(help="Project id, when the key sees several.")] = None,
    url: Annotated[str, typer.Option(envvar="PTW_URL", help="Server URL.")] = "http://127.0.0.1:8000",
    key: Annotated[
        str | None, typer.Option(envvar="PTW_API_KEY", help="API key (default: the local key).")
    ] = None,
) -> None:
    """Start a run of a workflow from the terminal."""
    from ptw.client import GraphQLClient, GraphQLError
    from ptw.watch import start_and_watch

    client = GraphQLClient(url, key or _local_key())
    try:
        status = asyncio.run(start_and_watch(client, workflow, _params(param or []), project, watch))
    except GraphQLError as exc:
        err.print(f"[red]{exc.code or 'ERROR'}[/]: {exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(0 if status in (None, "SUCCEEDED") else 1)


@app.command("optimize")
def optimize(
    workflow: Annotated[str, typer.Argument(help="Workflow name, e.g. digits-mlp.")],
    kind: Annotated[str, typer.Option(help="search (hyperparameters) or tuning (performance).")] = "search",
    space: Annotated[
        str | None,
        typer.Option(help='The search space as JSON, or @file.json: {"lr": {"type": "float", ...}}.'),
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
        typer.Option("-p", "--param", help="key=value every trial gets (value parsed as JSON)."),
    ] = None,
    watch: Annotated[bool, typer.Option(help="Follow the trials in a live table until the end.")] = False,
    project: Annotated[str | None, typer.Option(help="Project id, when the key sees several.")] = None,
    url: Annotated[str, typer.Option(envvar="PTW_URL", help="Server URL.")] = "http://127.0.0.1:8000",
    key: Annotated[
        str | None, typer.Option(envvar="PTW_API_KEY", help="API key (default: the local key).")
    ] = None,
) -> None:
    """Start a hyperparameter search (or a performance tuning) of a workflow from the terminal."""
    from ptw.client import GraphQLClient, GraphQLError
    from ptw.optimize import read_space, start_optimization

    kinds = {"search": "HYPERPARAMETER_SEARCH", "tuning": "PERFORMANCE_TUNING"}
    if kind not in kinds or direction.lower() not in ("maximize", "minimize"):
        err.print("[red]--kind is search or tuning; --direction is maximize or minimize[/]")
        raise typer.Exit(2)
    search = kind == "search"
    client = GraphQLClient(url, key or _local_key())
    try:
        fields = {
            "kind": kinds[kind],
            "space": read_space(space),
            "params": _params(param or []) or None,
            "timeBudgetSeconds": time_budget,
            **(
                {
                    "objective": objective,
                    "direction": direction.upper(),
                    "sampler": sampler,
                    "pruner": pruner,
                    "maxTrials": max_trials,
                    "maxParallel": max_parallel,
                }
                if search
                else {}
            ),
        }
        status = asyncio.run(start_optimization(client, workflow, fields, project, watch))
    except GraphQLError as exc:
        err.print(f"[red]{exc.code or 'ERROR'}[/]: {exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(0 if status in (None, "SUCCEEDED") else 1)


def _params(pairs: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            err.print(f"[red]bad parameter {pair!r}[/]: use key=value")
            raise typer.Exit(2)
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return params


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _local_key() -> str | None:
    from ptw.local_key import read_local_key

    return read_local_key(_settings().local_key_file)


def _run_or_exit(coro: Coroutine[Any, Any, None]) -> None:
    from ptw.infra.db.database import SchemaNotAtHead

    try:
        asyncio.run(coro)
    except DomainError as exc:
        err.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(1) from None
    except SchemaNotAtHead as exc:
        err.print(f"[red]database not ready[/]: {exc}", soft_wrap=True)
        raise typer.Exit(3) from None


if __name__ == "__main__":
    sys.exit(app())
