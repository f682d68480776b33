"""The commands that run the product itself: ``ptw serve``, ``ptw worker``, ``ptw db upgrade``."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ptw.domain.errors import DomainError
from ptw.infra.settings import Settings

err = Console(stderr=True)


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

    settings = load_settings(executors=executors)
    run_or_exit(run_server(settings, host, port, ssl_certfile, ssl_keyfile))


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
    pool: Annotated[
        list[str] | None,
        typer.Option(help="Serve only this executor pool's runs (repeatable). Default: PTW_WORKER_POOLS."),
    ] = None,
) -> None:
    """Run an executor on the production queue (PTW_REDIS_URL and PTW_DATABASE_URL) until SIGTERM/SIGINT;
    with --autoscale, a supervisor of workers instead, from --min (0: none while nothing waits) to --max."""
    settings = load_settings(worker_slots=slots, worker_pools=pool or None)
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
        run_or_exit(run_autoscaler(settings, policy))
        return
    run_or_exit(_worker(settings))


async def _worker(settings: Settings) -> None:
    """The slots' fork servers are started first: they import torch (seconds) while this process imports
    and wires the control plane's side, instead of after it (a cold start ~1 s shorter)."""
    from ptw.executors.device import threads_per_slot
    from ptw.executors.fork_client import ForkServerClient
    from ptw.executors.warm_runner import training_environ_with

    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    threads, env = threads_per_slot(settings.worker_slots), training_environ_with(settings.runner_env())
    forks = [
        await ForkServerClient.spawn(settings.artifacts_dir, threads=threads, env=env)
        for _ in range(settings.worker_slots)
    ]
    from ptw.worker import run_worker

    await run_worker(settings, forks)


def db_upgrade() -> None:
    """Apply the database migrations: the only command that migrates a shared database (embedded
    `ptw serve` migrates its own SQLite file on start; workers, production replicas and `ptw keys create`
    refuse to start until the schema is at head)."""

    async def upgrade() -> None:
        from ptw.infra.db.database import Database

        settings = load_settings()
        database = Database(settings.resolved_database_url)
        try:
            await database.upgrade()
        finally:
            await database.dispose()
        print("database is up to date")

    run_or_exit(upgrade())


def load_settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def run_or_exit(coro: Coroutine[Any, Any, None]) -> None:
    from ptw.infra.db.database import SchemaNotAtHead

    try:
        asyncio.run(coro)
    except DomainError as exc:
        err.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(1) from None
    except SchemaNotAtHead as exc:
        err.print(f"[red]database not ready[/]: {exc}", soft_wrap=True)
        raise typer.Exit(3) from None
