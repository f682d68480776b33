"""The limits on a document's shape (depth, aliases, repeated fields, fragments, cost), checked in one
pass linear in the document before graphql-core's own validation runs.

strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` walk a fragment again at every spread, so a
page of fragments that each spread the next twice costs 2**n steps (20 levels: seconds; 39: minutes, with
the event loop held). Here every fragment is measured once and remembered. They run as a hook before
validation, not as validation rules: graphql-core runs all its rules in one visit, so a cheap refusal there
would not spare the costly rules (``OverlappingFieldsCanBeMergedRule`` is quadratic in fields sharing a
name, hence the bounds on repeated fields and on fragments, which keep it small).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from ptw.api.cost import CostEstimate

CODE = "GRAPHQL_VALIDATION_FAILED"


@dataclass(frozen=True)
class DocumentLimits:
    """Generous for dashboards (the run page asks one aliased series per metric key), fatal to abuse."""

    max_depth: int = 12
    max_aliases: int = 30
    max_fragments: int = 50
    max_repeated_field: int = 20  # the same response name in one selection set
    max_cost: int = 100_000


@dataclass
class _Shape:
    depth: int
    aliases: int


class ShapeMeasure:
    """Depth (nested fields with selections; ``__`` fields count nothing, as in strawberry's limiter) and
    aliases of selection sets, each fragment measured once however often it is spread."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self._measured: dict[str, _Shape] = {}
        self._visiting: set[str] = set()

    def selections(self, selection_set: SelectionSetNode | None) -> _Shape:
        shape = _Shape(0, 0)
        if selection_set is None:
            return shape
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                inner = self.selections(selection.selection_set)
                introspection = selection.name.value.startswith("__")
                if selection.selection_set is not None and not introspection:
                    shape.depth = max(shape.depth, 1 + inner.depth)
                shape.aliases += inner.aliases + (1 if selection.alias else 0)
            else:
                inner = (
                    self.selections(selection.selection_set)
                    if isinstance(selection, InlineFragmentNode)
                    else self.fragment(selection.name.value)
                    if isinstance(selection, FragmentSpreadNode)
                    else _Shape(0, 0)
                )
                shape.depth = max(shape.depth, inner.depth)
                shape.aliases += inner.aliases
        return shape

    def fragment(self, name: str) -> _Shape:
        if name in self._measured:
            return self._measured[name]
        definition = self.fragments.get(name)
        if definition is None or name in self._visiting:
            return _Shape(0, 0)  # unknown or cyclic: graphql-core's rules refuse the document
        self._visiting.add(name)
        shape = self.selections(definition.selection_set)
        self._visiting.discard(name)
        self._measured[name] = shape
        return shape


def repeated_field(document: DocumentNode) -> tuple[str, int]:
    """The response name repeated most in one selection set (fields of its inline fragments included),
    and how often; each selection set of the document is looked at once, spreads are not followed."""
    worst, count = "", 0
    stack = [d.selection_set for d in document.definitions if hasattr(d, "selection_set")]
    while stack:
        names: Counter[str] = Counter()
        pending = [stack.pop()]
        while pending:  # one selection set with its inline fragments, which merge into it
            selection_set = pending.pop()
            for selection in selection_set.selections if selection_set else ():
                if isinstance(selection, FieldNode):
                    names[(selection.alias or selection.name).value] += 1
                    if selection.selection_set is not None:
                        stack.append(selection.selection_set)
                elif isinstance(selection, InlineFragmentNode):
                    pending.append(selection.selection_set)
        if names:
            name, seen = names.most_common(1)[0]
            if seen > count:
                worst, count = name, seen
    return worst, count


def document_errors(
    document: DocumentNode, limits: DocumentLimits, variables: Mapping[str, Any] | None
) -> list[GraphQLError]:
    """Every limit the document is over, cheapest checks first; empty when within them all."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    if len(fragments) > limits.max_fragments:
        return [_error(f"{len(fragments)} fragments found. Allowed: {limits.max_fragments}")]
    name, seen = repeated_field(document)
    if seen > limits.max_repeated_field:
        return [_error(f"'{name}' asked {seen} times in one selection. Allowed: {limits.max_repeated_field}")]
    errors: list[GraphQLError] = []
    shapes, costs = ShapeMeasure(fragments), CostEstimate(fragments, dict(variables or {}))
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        label = f"'{operation.name.value}' " if operation.name else ""
        shape = shapes.selections(operation.selection_set)
        if shape.aliases > limits.max_aliases:
            errors.append(_error(f"{shape.aliases} aliases found. Allowed: {limits.max_aliases}", operation))
        if shape.depth > limits.max_depth:
            errors.append(_error(f"{label}exceeds maximum operation depth of {limits.max_depth}", operation))
        cost = costs.selections(operation.selection_set)
        if cost > limits.max_cost:
            errors.append(
                GraphQLError(
                    f"Operation {label}is too costly: an estimated {cost} objects, more than the "
                    f"{limits.max_cost} allowed. Ask for smaller pages (first) or fewer nested lists.",
                    operation,
                    extensions={
                        "code": CODE,
                        "cost": min(cost, _MAX_SAFE_INTEGER),
                        "maxCost": limits.max_cost,
                    },
                )
            )
    return errors


# The largest integer a JavaScript client reads exactly; nested spreads can estimate far more than that.
_MAX_SAFE_INTEGER = 2**53 - 1


def _error(message: str, node: OperationDefinitionNode | None = None) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": CODE})


def document_limit(limits: DocumentLimits) -> Callable[[], SchemaExtension]:
    """The hook refusing a document over ``limits`` before graphql-core validates it (an operation
    already refused, say by the rate limit, is not looked at)."""

    class DocumentLimit(SchemaExtension):
        async def on_validate(self) -> AsyncIterator[None]:
            context = self.execution_context
            if context.pre_execution_errors is None and context.graphql_document is not None:
                errors = document_errors(context.graphql_document, limits, context.variables)
                if errors:
                    context.pre_execution_errors = errors
            yield

    return DocumentLimit
