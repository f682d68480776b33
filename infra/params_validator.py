"""JSON-schema validation of workflow parameters (the ParamsValidator port), by the jsonschema library."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


class JsonSchemaValidator:
    def errors(self, schema: dict[str, Any], params: dict[str, Any]) -> list[tuple[str, str]]:
        validator = Draft202012Validator(schema)
        found = sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))
        return [(_path(e.absolute_path), e.message) for e in found]

    def check_schema(self, schema: dict[str, Any]) -> list[str]:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            return [exc.message]
        return []


def _path(parts: Any) -> str:
    """A JSON path relative to the params object: ``.lr``, ``.layers[2]``; empty for the object itself."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
