"""``ptw keys create`` (straight against the database: the admin's bootstrap) and ``ptw keys list|revoke``
(through the server, for the admins of a project)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ptw.client import GraphQLClient
from ptw.commands.common import (
    EXIT_USAGE,
    PROJECTS,
    Json,
    Key,
    Url,
    call,
    connect,
    fail,
    out,
    pick,
    print_json,
    short,
    when,
)

app = typer.Typer(help="API keys: create (against the database), list, revoke.", no_args_is_help=True)
KEYS = """query($id: ID!) { node(id: $id) { ... on Project { name
  apiKeys { role apiKey { id name prefix createdAt revokedAt lastUsedAt } } } } }"""
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { id name prefix revokedAt } }"


@app.command("create")
def create(
    project: Annotated[str, typer.Option(help="Project name; created if missing.")],
    role: Annotated[str, typer.Option(help="admin, member or viewer.")] = "admin",
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
) -> None:
    """Create an API key straight against the configured database. The key is the last line printed."""
    from ptw.commands.server import load_settings, run_or_exit
    from ptw.domain.tenancy import Role

    try:
        parsed = Role[role.upper()]
    except KeyError:
        fail(EXIT_USAGE, f"unknown role {role!r}: use admin, member or viewer")

    async def go() -> None:
        from ptw.infra.bootstrap import bootstrap

        services = await bootstrap(load_settings())
        try:
            issued = await services.access.bootstrap_key(project, parsed, name=name)
        finally:
            await services.aclose()
        print(
            f"Created a {parsed.name.lower()} key for project {issued.project.name!r}. It is shown only once:"
        )
        print(issued.secret)

    run_or_exit(go())


async def _keys(client: GraphQLClient, project: str | None) -> list[dict[str, Any]]:
    projects = (await client.execute(PROJECTS))["viewer"]["projects"]
    chosen = [pick(project, projects, "project")] if project else projects
    found: list[dict[str, Any]] = []
    for p in chosen:
        if p["role"] != "ADMIN" and not project:
            continue  # only admins see a project's keys
        node = (await client.execute(KEYS, {"id": p["id"]}))["node"]
        found += [{**k["apiKey"], "role": k["role"], "project": p["name"]} for k in node["apiKeys"]]
    return found


@app.command("list")
def list_keys(
    project: Annotated[
        str | None, typer.Option(help="Project name (default: every project you administer).")
    ] = None,
    json: Json = False,
    url: Url = None,
    key: Key = None,
) -> None:
    """The API keys of the projects you administer (their secrets are never shown again)."""
    client = connect(url, key)
    found = call(client, _keys(client, project))
    if json:
        print_json(found)
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "prefix", "name", "project", "role", "created", "last used", "revoked"):
        table.add_column(column)
    for k in found:
        table.add_row(
            short(k["id"]),
            k["prefix"],
            k["name"] or "",
            k["project"],
            k["role"],
            when(k["createdAt"]),
            when(k["lastUsedAt"]),
            when(k["revokedAt"]) if k["revokedAt"] else "",
        )
    out.print(table)


@app.command("revoke")
def revoke(
    api_key: Annotated[
        str, typer.Argument(help="The key's short id, id, prefix or name (see `ptw keys list`).")
    ],
    url: Url = None,
    key: Key = None,
) -> None:
    """Revoke a key: it is refused from now on and its live subscriptions end."""
    client = connect(url, key)

    async def go() -> dict[str, Any]:
        keys = await _keys(client, None)
        chosen = next((k for k in keys if k["prefix"] == api_key), None) or pick(api_key, keys, "key")
        return dict((await client.execute(REVOKE, {"id": chosen["id"]}))["revokeApiKey"])

    found = call(client, go())
    out.print(f"revoked key {found['prefix']} {found['name'] or ''}".rstrip())
