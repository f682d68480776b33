"""The ``ptw`` command line: serve the product, and drive all of it from a terminal.

Each noun's commands live in ``ptw/commands/``; see ``ptw.commands.common`` for the exit codes."""

from __future__ import annotations

import sys

import typer

from ptw.commands import artifacts, keys, optimizations, projects, runs, server, workflows

app = typer.Typer(
    help="PyTorch-workflow: a GraphQL control plane for PyTorch training.", no_args_is_help=True
)
db_app = typer.Typer(help="The database.", no_args_is_help=True)

app.command("serve")(server.serve)
app.command("worker")(server.worker)
db_app.command("upgrade")(server.db_upgrade)
app.command("run")(runs.start)
app.command("optimize")(optimizations.start)
app.add_typer(runs.app, name="runs")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(workflows.app, name="workflows")
app.add_typer(optimizations.app, name="optimizations")
app.add_typer(projects.app, name="projects")
app.add_typer(keys.app, name="keys")
app.add_typer(db_app, name="db")


if __name__ == "__main__":
    sys.exit(app())
