"""The cost limit: an estimate of how many objects a document may make the server resolve, refused above
a maximum before anything runs.

graphql-core and strawberry have no cost rule, so this is a small hand-written estimate, checked with the
other limits in ``api/document_limits.py``. Depth and aliases alone let ``runs(first: 1000) { edges { node {
workflow { runs(first: 1000) ... } } } }`` through: twelve levels, no alias, a billion objects. The estimate:

- every field costs 1, plus its selections' cost times its multiplier;
- the multiplier of a field with a ``first`` argument (a connection) is that page size, clamped like the
  resolvers clamp it (default 50, at most 1000), read from the variables when it is one;
- a series read counts one per thousand points it may load: ``maxPoints`` of a downsampled read (which
  reads block summaries, or at most 64 x maxPoints packed points: infra/db/series_summary.py), and the
  most a whole read may return (``maxPoints: null``, ``MAX_WHOLE_SERIES``), whatever the series holds;
  points are three numbers each, not objects with resolvers, yet a page of long series is still refused;
- fragments count where they are spread (each fragment once, memoised: a fragment spread twice in
  each of ten nested fragments costs 2**10 times, which is the truth, computed in linear time); a
  fragment cycle counts nothing here (graphql-core's ``NoFragmentCyclesRule`` refuses it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    SelectionSetNode,
    VariableNode,
)

from ptw.api.pagination import DEFAULT_PAGE_SIZE
from ptw.domain.ports import MAX_PAGE_SIZE
from ptw.domain.series import MAX_WHOLE_SERIES

POINTS_PER_OBJECT = 1000


class CostEstimate:
    """The cost of selection sets of one document, given its fragments by name and its variables."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode], variables: dict[str, Any]) -> None:
        self.fragments, self.variables = fragments, variables
        self._fragments: dict[str, int] = {}
        self._visiting: set[str] = set()

    def selections(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += 1 + self.multiplier(selection) * self.selections(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += self.selections(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value)
        return total

    def fragment(self, name: str) -> int:
        if name in self._fragments:
            return self._fragments[name]
        definition = self.fragments.get(name)
        if definition is None or name in self._visiting:
            return 0  # unknown or cyclic: other rules refuse the document
        self._visiting.add(name)
        cost = self.selections(definition.selection_set)
        self._visiting.discard(name)
        self._fragments[name] = cost
        return cost

    def multiplier(self, field: FieldNode) -> int:
        arguments = {a.name.value: a.value for a in field.arguments or ()}
        if "first" in arguments:
            first = self.integer(arguments["first"])
            return max(1, min(first if first is not None else DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))
        if "maxPoints" in arguments:
            if self.null(arguments["maxPoints"]):
                return math.ceil(MAX_WHOLE_SERIES / POINTS_PER_OBJECT)
            points = self.integer(arguments["maxPoints"])
            return max(1, math.ceil((points or 0) / POINTS_PER_OBJECT))
        return 1

    def null(self, value: object) -> bool:
        if isinstance(value, NullValueNode):
            return True
        return isinstance(value, VariableNode) and self.variables.get(value.name.value, 0) is None

    def integer(self, value: object) -> int | None:
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            found = self.variables.get(value.name.value)
            return found if isinstance(found, int) and not isinstance(found, bool) else None
        return None
