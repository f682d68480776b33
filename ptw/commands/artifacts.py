"""``ptw artifacts list RUN`` and ``ptw artifacts download RUN NAME``: checkpoints and files a run kept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
import httpx
import typer
from rich.table import Table

from ptw.client import GraphQLClient
from ptw.commands.common import EXIT_USAGE, Key, Url, call, connect, fail, out, when

app = typer.Typer(help="Artifacts of runs: list, download.", no_args_is_help=True)
ARTIFACTS = """query($id: ID!) { run(id: $id) {
  artifacts { name kind step sizeBytes createdAt downloadUrl } } }"""


@app.command("list")
def list_artifacts(
    run: Annotated[str, typer.Argument(help="The run's short id or id.")], url: Url = None, key: Key = None
) -> None:
    """The run's checkpoints (those its workflow's retention keeps) and the files it saved."""
    client = connect(url, key)
    found = call(client, client.execute(ARTIFACTS, {"id": run}))["run"]["artifacts"]
    table = Table("name", "kind", "step", "bytes", "created")
    for a in found:
        step = "" if a["step"] is None else str(a["step"])
        table.add_row(a["name"], a["kind"], step, str(a["sizeBytes"]), when(a["createdAt"]))
    out.print(table)


@app.command("download")
def download(
    run: Annotated[str, typer.Argument(help="The run's short id or id.")],
    name: Annotated[str, typer.Argument(help="The artifact's name, as `ptw artifacts list` shows it.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: ./NAME")] = None,
    url: Url = None,
    key: Key = None,
) -> None:
    """Stream one artifact to a file."""
    client = connect(url, key)
    target = output or Path(name)
    size = call(client, _download(client, run, name, target))
    out.print(f"{target} ({size} bytes)")


async def _download(client: GraphQLClient, run: str, name: str, target: Path) -> int:
    found = (await client.execute(ARTIFACTS, {"id": run}))["run"]["artifacts"]
    match = next((a for a in found if a["name"] == name), None)
    if match is None:
        names = ", ".join(a["name"] for a in found) or "none"
        fail(EXIT_USAGE, f"run {run} has no artifact {name!r}; it has: {names}")
    headers = {"Authorization": f"Bearer {client.key}"} if client.key else {}
    written = 0
    partial = target.with_name(f".{target.name}.part")
    async with httpx.AsyncClient(timeout=client.timeout) as http:
        async with http.stream("GET", match["downloadUrl"], headers=headers) as answer:
            answer.raise_for_status()
            async with await anyio.open_file(partial, "wb") as f:
                async for chunk in answer.aiter_bytes(1 << 20):
                    await f.write(chunk)
                    written += len(chunk)
    partial.replace(target)  # a failed download leaves no half file under the name
    return written
