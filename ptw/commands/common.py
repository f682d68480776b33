"""What every remote command shares: the server and key options, errors in a line or two with what to do
(never a traceback), exit codes, ``--json`` output, and names or short ids turned into ids.

Exit codes: 0 done; 1 the run (or search) it followed failed; 2 a usage error (bad option, unknown name,
refused input, no key); 3 a server error (unreachable, or failing)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import sys
from collections.abc import Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import httpx
import typer
from rich.console import Console

from ptw.client import GraphQLClient, GraphQLError
from ptw.tracking.connection import NoKey, base_url, find_key

T = TypeVar("T")
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_SERVER = 3

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Url = Annotated[
    str | None, typer.Option("--url", envvar="PTW_URL", help="Server URL (default http://127.0.0.1:8000).")
]
Key = Annotated[
    str | None,
    typer.Option("--key", envvar="PTW_API_KEY", help="API key (default: the local key of `ptw serve`)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
Project = Annotated[str | None, typer.Option(help="Project name (default: the key's only project).")]

_SERVER_CODES = {"INTERNAL_SERVER_ERROR", "RATE_LIMITED"}
_BAREWORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")


def fail(code: int, message: str, hint: str | None = None) -> NoReturn:
    err.print(f"[red]error[/]: {message}", soft_wrap=True)
    if hint:
        err.print(hint, soft_wrap=True)
    raise typer.Exit(code)


def connect(url: str | None, key: str | None) -> GraphQLClient:
    try:
        secret = find_key(key)
    except NoKey as missing:
        fail(EXIT_USAGE, str(missing))
    return GraphQLClient(base_url(url), secret)


def call(client: GraphQLClient, work: Coroutine[Any, Any, T]) -> T:
    """Run one command's requests; every failure becomes a line or two and an exit code."""
    try:
        return asyncio.run(work)
    except GraphQLError as error:
        if error.code in _SERVER_CODES:
            fail(EXIT_SERVER, f"the server failed: {error}")
        if error.code == "UNAUTHENTICATED":
            fail(EXIT_USAGE, f"the server refused the key: {error}", "Set PTW_API_KEY to a valid key.")
        field = (error.errors[0].get("extensions") or {}).get("field") if error.errors else None
        hint = "Pass --project NAME (`ptw projects list` shows yours)." if field == "projectId" else None
        fail(EXIT_USAGE, f"{error}" + (f" ({error.code})" if error.code else ""), hint)
    except (httpx.TransportError, OSError) as error:
        fail(
            EXIT_SERVER,
            f"the server at {client.url.removesuffix('/graphql')} does not answer ({type(error).__name__})",
            "Start it with `ptw serve`, or set PTW_URL to where it runs.",
        )
    except (httpx.HTTPStatusError, ValueError) as error:
        fail(EXIT_SERVER, f"the server answered unexpectedly: {error}")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value``: the value is JSON (3e-4, [64, 32], {"a": 1}, true, "text"); a bare word such as
    adam is taken as a string. NaN and infinities are refused (no JSON carries them)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            fail(EXIT_USAGE, f"bad parameter {pair!r}: use key=value, e.g. -p lr=3e-4")
        params[name] = parse_value(name, raw)
    return params


def parse_value(name: str, raw: str) -> Any:
    def refuse(constant: str) -> NoReturn:
        fail(EXIT_USAGE, f"parameter {name}={raw} is {constant}: only finite numbers can be stored")

    if raw.strip().lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        refuse(raw.strip())
    try:
        return json.loads(raw, parse_constant=refuse)
    except json.JSONDecodeError:
        if _BAREWORD.match(raw):
            return raw
        fail(
            EXIT_USAGE,
            f"parameter {name}={raw} is not JSON",
            "Quote text as JSON (-p name='\"some text\"'), or give a number, list or object.",
        )


def read_json_option(value: str | None, what: str) -> Any:
    """An option given as JSON text or as @file.json."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            with open(value[1:]) as f:
                text = f.read()
        except OSError as error:
            fail(EXIT_USAGE, f"cannot read {what} from {value[1:]}: {error.strerror}")
    try:
        return json.loads(text, parse_constant=lambda c: fail(EXIT_USAGE, f"{what} holds {c}"))
    except json.JSONDecodeError as error:
        fail(EXIT_USAGE, f"{what} is not JSON: {error}")


def uuid_of(global_id: str) -> str:
    try:
        return base64.b64decode(global_id).decode().split(":", 1)[1]
    except (binascii.Error, UnicodeError, IndexError):
        return global_id


def short(global_id: str) -> str:
    """What the web UI prints for an id: the first 8 characters of its uuid."""
    return uuid_of(global_id)[:8]


def pick(ref: str, items: list[dict[str, Any]], kind: str, name_field: str | None = "name") -> dict[str, Any]:
    """The item a user named by its id, short id or name (``name_field``), among ``items``."""
    found = [
        i
        for i in items
        if ref == i["id"]
        or (name_field is not None and ref == i.get(name_field))
        or (len(ref) >= 4 and uuid_of(i["id"]).startswith(ref))
    ]
    if not found:
        fail(EXIT_USAGE, f"no {kind} {ref!r}", f"`ptw {kind}s list` shows them.")
    if len(found) > 1:
        fail(EXIT_USAGE, f"{kind} {ref!r} is ambiguous ({len(found)} match): give more of its id")
    return found[0]


PROJECTS = "{ viewer { projects { id name role } } }"


async def project_id(client: GraphQLClient, name: str | None) -> str | None:
    if name is None:
        return None
    projects = (await client.execute(PROJECTS))["viewer"]["projects"]
    return str(pick(name, projects, "project")["id"])


UNKNOWN_WORKFLOW_HINT = "`ptw workflows list` shows the workflows you can run."
WORKFLOW = "query($name: String!, $p: ID) { workflow(name: $name, projectId: $p) { id name } }"


async def workflow_id(client: GraphQLClient, name: str, project: str | None) -> str:
    return str((await named_workflow(client, WORKFLOW, name, project))["id"])


async def named_workflow(client: GraphQLClient, query: str, name: str, project: str | None) -> dict[str, Any]:
    """The workflow of that name (``query`` takes $name and $p); an unknown one ends the command."""
    try:
        found = (await client.execute(query, {"name": name, "p": project}))["workflow"]
    except GraphQLError as error:
        if error.code != "NOT_FOUND":
            raise
        found = None
    if found is None:
        fail(EXIT_USAGE, f"unknown workflow {name!r}", UNKNOWN_WORKFLOW_HINT)
    return dict(found)


def when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "—"
