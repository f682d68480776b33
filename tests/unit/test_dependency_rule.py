"""The dependency rule, checked on the source: the domain imports no adapter or framework, and the
API and the executors never import each other."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DOMAIN_FORBIDDEN = frozenset(
    {
        "api",
        "executors",
        "infra",
        "ptw",
        "strawberry",
        "sqlalchemy",
        "redis",
        "arq",
        "torch",
        "starlette",
        "uvicorn",
        "asyncpg",
        "aiosqlite",
    }
)


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
    return [f"{filename}:{line} imports {mod}" for line, mod in found if mod.split(".")[0] in forbidden]


def package_violations(package: str, forbidden: frozenset[str]) -> list[str]:
    folder = ROOT / package
    found: list[str] = []
    for path in sorted(folder.rglob("*.py")):
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), forbidden)
    return found


def test_domain_imports_no_adapter_nor_framework() -> None:
    assert any((ROOT / "domain").rglob("*.py")), "domain/ should hold the business code"
    found = package_violations("domain", DOMAIN_FORBIDDEN)
    assert not found, "domain/ must stay pure:\n" + "\n".join(found)


@pytest.mark.parametrize(("package", "other"), [("api", "executors"), ("executors", "api")])
def test_api_and_executors_never_import_each_other(package: str, other: str) -> None:
    if not any((ROOT / package).rglob("*.py")):
        pytest.skip(f"{package}/ has no modules yet")
    found = package_violations(package, frozenset({other}))
    assert not found, f"{package}/ must not import {other}/:\n" + "\n".join(found)


SNEAKY = """
import json
from domain.runs import Run

def load():
    import torch.nn
    if True:
        from infra import bootstrap
    from . import api  # relative: domain.api, which is allowed

class Store:
    def write(self):
        from sqlalchemy.ext.asyncio import AsyncSession
"""


def test_checker_finds_imports_anywhere_and_names_file_and_module() -> None:
    assert violations(SNEAKY, "domain/sneaky.py", DOMAIN_FORBIDDEN) == [
        "domain/sneaky.py:6 imports torch.nn",
        "domain/sneaky.py:8 imports infra",
        "domain/sneaky.py:8 imports infra.bootstrap",
        "domain/sneaky.py:13 imports sqlalchemy.ext.asyncio",
        "domain/sneaky.py:13 imports sqlalchemy.ext.asyncio.AsyncSession",
    ]


def test_checker_does_not_confuse_prefixes() -> None:
    source = "import apis\nimport torchvision_like\nfrom infrastructure import x\n"
    assert violations(source, "m.py", DOMAIN_FORBIDDEN) == []
