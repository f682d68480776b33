"""Refuses, before anything runs, input values that the database cannot store or that cost more than they
are worth: NUL characters and unpaired surrogates (also what invalid UTF-8 decodes to, see
``decode_body``), numbers JSON cannot carry (NaN, infinities), nesting deeper than ``max_depth`` and lists
longer than ``max_list``, in the variables and in the document's own literal values.

Every string input goes through here (names, params, idempotency keys, objectives, filters, metric keys),
so no resolver meets one of these values; the answer is BAD_USER_INPUT with the path of the value
(``variables.input.params.layers[3]``). graphql-core's parser refuses unpaired surrogates in literals and
nests documents only so deep itself; ``\\u0000`` in a literal and everything in the variables are ours.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    StringValueNode,
    ValueNode,
)
from strawberry.extensions import SchemaExtension

from ptw.api.errors import domain_error
from ptw.domain.errors import BadInput


@dataclass(frozen=True)
class InputLimits:
    max_depth: int = 32  # nested lists and objects of one value (JSON params, filters)
    max_list: int = 1000  # items of one list, under asyncpg's 32,767 bind parameters with room to spare


def string_problem(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character, which cannot be stored"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 (an unpaired surrogate or an invalid byte)"
    return None


def value_problem(value: object, path: str, limits: InputLimits) -> tuple[str, str] | None:
    """The first (path, reason) in a decoded JSON value that cannot be accepted; None if all is well.
    Iterative, so a value nested past any depth is measured without recursion."""
    stack: list[tuple[object, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > limits.max_depth:
            return where, f"is nested more than {limits.max_depth} levels deep"
        if isinstance(item, str):
            reason = string_problem(item)
            if reason:
                return where, reason
        elif isinstance(item, float) and not math.isfinite(item):
            return where, "is not a finite number"
        elif isinstance(item, dict):
            for key, inner in item.items():
                reason = string_problem(key) if isinstance(key, str) else None
                if reason:
                    return (
                        f"{where}.{key.encode('utf-8', 'backslashreplace').decode()}",
                        f"has a key that {reason}",
                    )
                stack.append((inner, f"{where}.{key}", depth + 1))
        elif isinstance(item, list):
            if len(item) > limits.max_list:
                return where, f"has {len(item)} items, more than the {limits.max_list} allowed"
            stack.extend((inner, f"{where}[{i}]", depth + 1) for i, inner in enumerate(item))
    return None


def _arguments(document: DocumentNode) -> Iterator[tuple[str, ValueNode]]:
    """The literal values of a document's arguments, each with its path (``startRun.input.params``).

    A walk of selection sets by hand, not graphql-core's ``visit``: the generic visitor costs ~10 times as
    much per node, and this runs on every document before its shape is measured."""
    stack: list[tuple[tuple[str, ...], Any]] = [
        ((), d.selection_set) for d in document.definitions if getattr(d, "selection_set", None)
    ]
    while stack:
        fields, selection_set = stack.pop()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                path = (*fields, (selection.alias or selection.name).value)
                for argument in selection.arguments or ():
                    yield ".".join([*path, argument.name.value]), argument.value
                if selection.selection_set is not None:
                    stack.append((path, selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((fields, selection.selection_set))


def literal_problem(document: DocumentNode, limits: InputLimits) -> tuple[str, str] | None:
    for name, node in _arguments(document):
        for where, inner, depth in _walk(node, name):
            if depth > limits.max_depth:
                return where, f"is nested more than {limits.max_depth} levels deep"
            if isinstance(inner, StringValueNode):
                reason = string_problem(inner.value)
                if reason:
                    return where, reason
            elif isinstance(inner, ListValueNode) and len(inner.values) > limits.max_list:
                return where, f"has {len(inner.values)} items, more than the {limits.max_list} allowed"
    return None


def _walk(node: ValueNode, path: str) -> Iterator[tuple[str, ValueNode, int]]:
    stack: list[tuple[str, ValueNode, int]] = [(path, node, 0)]
    while stack:
        where, inner, depth = stack.pop()
        yield where, inner, depth
        if isinstance(inner, ListValueNode):
            stack.extend((f"{where}[{i}]", v, depth + 1) for i, v in enumerate(inner.values))
        elif isinstance(inner, ObjectValueNode):
            stack.extend((f"{where}.{f.name.value}", f.value, depth + 1) for f in inner.fields)


def input_errors(
    document: DocumentNode | None, variables: dict[str, Any] | None, limits: InputLimits
) -> list[GraphQLError]:
    problem = value_problem(variables or {}, "variables", limits)
    if problem is None and document is not None:
        problem = literal_problem(document, limits)
    if problem is None:
        return []
    path, reason = problem
    return [domain_error(BadInput(f"{path} {reason}", path=path))]


def input_limit(limits: InputLimits) -> Callable[[], SchemaExtension]:
    """The hook refusing unstorable or oversized input before validation and execution."""

    class InputLimit(SchemaExtension):
        async def on_validate(self) -> AsyncIterator[None]:
            context = self.execution_context
            if context.pre_execution_errors is None:
                errors = input_errors(context.graphql_document, context.variables, limits)
                if errors:
                    context.pre_execution_errors = errors
            yield

    return InputLimit


class BodyNotJson(json.JSONDecodeError):
    """What strawberry answers with 400 'Unable to parse request body as JSON'."""


def decode_body(data: str | bytes) -> object:
    """JSON of a request body or a WebSocket message. Invalid UTF-8 decodes to unpaired surrogates
    (``surrogateescape``), which ``value_problem`` then refuses with their path; nesting too deep for
    the decoder's recursion, and integers too long for Python's conversion limit, are a 400 rather than
    an unexpected error."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    try:
        return json.loads(text)
    except RecursionError:
        raise BodyNotJson("nested too deeply", "", 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        raise BodyNotJson(str(error), "", 0) from None
