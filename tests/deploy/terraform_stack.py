"""The Terraform of infra/terraform read as data (python-hcl2), with variables followed to their values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "infra" / "terraform"

_OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
_REFERENCE = re.compile(r"^\$\{(var|local)\.(\w+)\}$")


@dataclass
class Module:
    """One folder of .tf files: its resources, data sources, variables, locals and module calls."""

    path: Path
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: body for (kind, name), body in self.resources.items() if kind == resource_type}


def load_module(path: Path) -> Module:
    module = Module(path)
    for tf in sorted(path.glob("*.tf")):
        parsed = hcl2.loads(tf.read_text(), serialization_options=_OPTIONS)
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    module.resources[(kind, name)] = body
        for block in parsed.get("data", []):
            for kind, named in block.items():
                for name, body in named.items():
                    module.data[(kind, name)] = body
        for block in parsed.get("variable", []):
            module.variables.update(block)
        for block in parsed.get("locals", []):
            module.locals.update(block)
        for block in parsed.get("module", []):
            module.calls.update(block)
        module.terraform.extend(parsed.get("terraform", []))
    return module


class Stack:
    """The root module and the child modules it calls, by call name."""

    def __init__(self, root_dir: Path = TERRAFORM_DIR) -> None:
        self.root = load_module(root_dir)
        self.modules: dict[str, Module] = {}
        for call_name, call in self.root.calls.items():
            self.modules[call_name] = load_module((root_dir / call["source"]).resolve())

    def module(self, name: str) -> Module:
        return self.modules[name]

    def all_modules(self) -> list[tuple[str, Module]]:
        return [("root", self.root), *self.modules.items()]

    def resolve(self, module_name: str, value: Any) -> Any:
        """Follow `${var.x}` and `${local.x}` to what the deployment gives them with its defaults.

        A child variable takes the root's argument for it, else its own default; a root variable its default.
        Anything else (an attribute of another resource or module, a function call) comes back as written.
        """
        if not isinstance(value, str):
            return value
        match = _REFERENCE.match(value)
        if match is None:
            return value
        kind, name = match.groups()
        module = self.root if module_name == "root" else self.modules[module_name]
        if kind == "local":
            return self.resolve(module_name, module.locals[name])
        if module_name != "root" and name in self.root.calls[module_name]:
            return self.resolve("root", self.root.calls[module_name][name])
        variable = module.variables[name]
        if "default" not in variable:
            raise LookupError(
                f"{module_name}: var.{name} has no default and no argument from the root module"
            )
        return variable["default"]


@cache
def stack() -> Stack:
    return Stack()
