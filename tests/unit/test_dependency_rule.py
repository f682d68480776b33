"""The dependency rule, checked on the source: every arrow allowed between the layers ``domain``, ``infra``,
``api``, ``executors`` and the entrypoints in ``ptw/`` is stated here, and any other import fails."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS = ("domain", "infra", "api", "executors", "ptw")

# Which layers each layer may import (docs/architecture.md draws this picture).
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset(),
    "infra": frozenset({"domain"}),
    "api": frozenset({"domain"}),
    "executors": frozenset({"domain"}),
    "ptw": frozenset({"domain", "infra", "api", "executors"}),
}

# The composition root wires adapters; it alone reaches into the executors (built-in workflow specs, the
# checkpoint key's format). The API reads the wired services' type from it and nothing else of infra.
EXCEPTIONS: dict[str, frozenset[str]] = {
    "infra/bootstrap.py": frozenset({"ptw.executors"}),
    "infra/settings.py": frozenset({"ptw.executors"}),
    "api/*": frozenset({"ptw.infra.bootstrap"}),
}

FRAMEWORKS = frozenset(
    {"strawberry", "sqlalchemy", "redis", "arq", "torch", "starlette", "uvicorn", "asyncpg", "aiosqlite"}
)
DOMAIN_FORBIDDEN = FRAMEWORKS | {"api", "executors", "infra", "ptw"}


def imported_modules(source: str, filename: str = "<source>") -> Iterator[tuple[int, str]]:
    """(line, module) for every import anywhere in the source, functions and conditionals included.

    ``from x import y`` yields both ``x`` and ``x.y``: ``from infra import db`` imports ``infra``, and
    ``from . import api`` inside a package is relative, so only its named module is of interest."""
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def violations(source: str, filename: str, forbidden: frozenset[str]) -> list[str]:
    found = sorted(set(imported_modules(source, filename)))
    return [
        f"{filename}:{line} imports {mod}"
        for line, mod in found
        if (layer_of(mod) or mod.split(".")[0]) in forbidden
    ]


def package_violations(package: str, forbidden: frozenset[str]) -> list[str]:
    folder = ROOT / package
    found: list[str] = []
    for path in sorted(folder.rglob("*.py")):
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), forbidden)
    return found


def layer_of(module: str) -> str | None:
    """The layer of one of our modules (``ptw.infra.db`` → ``infra``, ``ptw.cli`` → ``ptw``), else None."""
    parts = module.split(".")
    if parts[0] != "ptw":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS[:-1] else "ptw"


def excepted(filename: str, module: str) -> bool:
    folder = filename.split("/")[0]
    for pattern, prefixes in EXCEPTIONS.items():
        if pattern in (filename, f"{folder}/*") and any(
            module == p or module.startswith(p + ".") for p in prefixes
        ):
            return True
    return False


def arrow_violations(source: str, filename: str) -> list[str]:
    own = filename.split("/")[0]
    found = []
    for line, module in sorted(set(imported_modules(source, filename))):
        target = layer_of(module)
        if target is None or target == own or target in ALLOWED[own] or excepted(filename, module):
            continue
        found.append(f"{filename}:{line} imports {module} ({own} → {target} is not an allowed arrow)")
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_every_import_between_layers_is_an_allowed_arrow(layer: str) -> None:
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"{layer}/ should hold modules"
    found: list[str] = []
    for path in files:
        found += arrow_violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, "\n".join(found)


def test_domain_imports_no_framework() -> None:
    found = package_violations("domain", DOMAIN_FORBIDDEN)
    assert not found, "domain/ must stay pure:\n" + "\n".join(found)


def test_arrow_checker_refuses_what_is_not_stated() -> None:
    source = "from ptw.executors.sdk import RunContext\nfrom ptw.infra.bootstrap import Services\n"
    assert arrow_violations(source, "api/runs/types.py") == [
        "api/runs/types.py:1 imports ptw.executors.sdk (api → executors is not an allowed arrow)",
        "api/runs/types.py:1 imports ptw.executors.sdk.RunContext (api → executors is not an allowed arrow)",
    ]
    assert arrow_violations("from ptw.infra.db import models\n", "api/x.py")[0].startswith("api/x.py:1")
    assert arrow_violations("import ptw.api.app\n", "executors/x.py") != []
    assert arrow_violations("from ptw.domain.runs import Run\n", "executors/x.py") == []


SNEAKY = """
import json
from ptw.domain.runs import Run

def load():
    import torch.nn
    if True:
        from ptw.infra import bootstrap
    from . import api  # relative: domain.api, which is allowed

class Store:
    def write(self):
        from sqlalchemy.ext.asyncio import AsyncSession
"""


def test_checker_finds_imports_anywhere_and_names_file_and_module() -> None:
    assert violations(SNEAKY, "domain/sneaky.py", DOMAIN_FORBIDDEN) == [
        "domain/sneaky.py:6 imports torch.nn",
        "domain/sneaky.py:8 imports ptw.infra",
        "domain/sneaky.py:8 imports ptw.infra.bootstrap",
        "domain/sneaky.py:13 imports sqlalchemy.ext.asyncio",
        "domain/sneaky.py:13 imports sqlalchemy.ext.asyncio.AsyncSession",
    ]


def test_checker_does_not_confuse_prefixes() -> None:
    source = "import apis\nimport torchvision_like\nfrom infrastructure import x\n"
    assert violations(source, "m.py", DOMAIN_FORBIDDEN) == []
