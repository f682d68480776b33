"""The local admin key of embedded mode: created on first start so GraphiQL and the CLI work at once."""

from __future__ import annotations

import os
from pathlib import Path

from ptw.domain.tenancy import Role
from ptw.infra.bootstrap import Services

DEFAULT_PROJECT = "default"


async def ensure_local_admin_key(services: Services) -> tuple[Path, bool]:
    """The key file's path, and whether a key was created now. The file is readable by its owner only."""
    path = services.settings.local_key_file
    if path.exists() and path.read_text().strip():
        return path, False
    issued = await services.access.bootstrap_key(DEFAULT_PROJECT, Role.ADMIN, name="local admin")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(issued.secret + "\n")
    return path, True


def read_local_key(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
