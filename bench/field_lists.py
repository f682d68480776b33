"""Lines that list an entity's fields by hand: the bodies of the row, cache, bus and GraphQL mapping
functions, plus GraphQL enum classes that copy a domain enum member by member.

``python -m bench.field_lists [ROOT]`` counts them in a checkout (default: this one); run it on a checkout
of an older commit (``git worktree add /tmp/old <rev>``) for the figure before."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

MAPPERS = re.compile(
    r"^(_run|_values|_workflow|_project|_key|_checkpoint|_optimization|_optimization_values|_result"
    r"|_result_values|_state|encode_\w+|decode_\w+|from_domain|_run_to_json|_run_from_json"
    r"|_entity_to_json|_optimization_from_json|_result_from_json|_known|_metrics_to_json"
    r"|_metrics_from_json|entity_of|values|of|from_entity|encode|decode|announce|autoscalers)$"
)
PLACES = (
    "infra/db/repositories",
    "infra/db/mapping.py",
    "infra/cache/codec.py",
    "infra/live/event_codec.py",
    "infra/live/redis_registry.py",
    "api/runs/types.py",
    "api/optimizations/types.py",
    "api/projects/types.py",
    "api/workflows/types.py",
    "api/pool/types.py",
    "api/node.py",
)
DOMAIN_ENUMS = {"RunStatus", "OptimizationKind", "OptimizationStatus", "Direction", "ResultState", "Role"}
COPIED_ENUMS = DOMAIN_ENUMS | {"OptimizationProgress"}


def count(path: Path) -> int:
    lines = 0
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and MAPPERS.match(node.name):
            lines += (node.end_lineno or node.lineno) - node.lineno + 1
        elif isinstance(node, ast.ClassDef) and node.name in COPIED_ENUMS and "api" in path.parts:
            lines += (node.end_lineno or node.lineno) - node.lineno + 1
    return lines


def main(root: Path) -> int:
    total = 0
    for place in PLACES:
        found = root / place
        for path in sorted(found.rglob("*.py")) if found.is_dir() else [found] if found.exists() else []:
            if n := count(path):
                print(f"{n:5d}  {path.relative_to(root)}")
                total += n
    print(f"{total:5d}  total")
    return total


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
