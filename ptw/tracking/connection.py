"""Where the tracking client and the CLI find the server and their key: arguments, PTW_URL / PTW_API_KEY,
then the local key file that embedded ``ptw serve`` writes (PTW_DATA_DIR, default ./.ptw)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


class NoKey(Exception):
    """No API key anywhere the client looks; the message says where it looked."""


@dataclass(frozen=True)
class Connection:
    url: str  # the server's base URL, without /graphql
    key: str

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"


def base_url(url: str | None = None) -> str:
    found = (url or os.environ.get("PTW_URL") or DEFAULT_URL).rstrip("/")
    return found.removesuffix("/graphql")


def local_key_file() -> Path:
    from ptw.infra.settings import Settings

    return Settings().local_key_file


def find_key(key: str | None = None) -> str:
    """The key given, else PTW_API_KEY, else the local key file of embedded mode."""
    if key:
        return key
    if os.environ.get("PTW_API_KEY"):
        return os.environ["PTW_API_KEY"]
    path = local_key_file()
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    if text:
        return text
    raise NoKey(
        f"no API key found: looked at --key (or api_key=), PTW_API_KEY and {path.resolve()} (written by "
        "`ptw serve` in embedded mode); set PTW_API_KEY or create one with `ptw keys create --project NAME`"
    )


def connect(url: str | None = None, key: str | None = None) -> Connection:
    return Connection(base_url(url), find_key(key))
