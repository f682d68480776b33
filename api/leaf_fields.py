"""Plain leaf fields resolved without graphql-core's per-field machinery.

A page of 50 runs with their latest metrics is some 2,500 fields, and most are leaves that strawberry
resolves by reading an attribute (``MetricPoint.value``, ``Run.status``). graphql-core still builds a
resolve info, its field-node list and argument values for each, and dispatches its completion through the
general path; without that, the dashboard page ran 13-20 % faster (alternated in one process). A field that
takes no arguments, has no resolver of its own (strawberry's basic field) and returns a scalar or enum is
read and serialized here directly; anything else, and any value that is null or fails to serialize, takes
graphql-core's path, which raises or reports the same errors it always did.
"""

from __future__ import annotations

from inspect import isawaitable
from typing import Any

from graphql import GraphQLField, GraphQLLeafType, GraphQLNonNull, Undefined, is_leaf_type
from strawberry.schema.schema_converter import GraphQLCoreConverter

_plain: dict[int, tuple[GraphQLField, GraphQLLeafType | None]] = {}  # id(field) -> its leaf type, if plain


def plain_leaf(field: GraphQLField) -> GraphQLLeafType | None:
    known = _plain.get(id(field))
    if known is not None and known[0] is field:
        return known[1]
    kind = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    plain = (
        not field.args
        # strawberry's attribute read: no resolver, no permission classes, no field extensions
        and getattr(definition, "is_basic_field", False)
        and getattr(field.resolve, "_is_default", False)
        and is_leaf_type(kind)
    )
    leaf = kind if plain else None
    _plain[id(field)] = (field, leaf)  # a schema's fields live as long as the process
    return leaf


class PlainLeafFields:
    """Mixed into the schema's execution context, before graphql-core's ``ExecutionContext``."""

    def execute_field(self, parent_type: Any, source: Any, field_details_list: Any, *rest: Any) -> Any:
        details = field_details_list[0]
        node = getattr(details, "node", details)  # graphql-core 3.3 groups FieldDetails; 3.2 FieldNodes
        middleware = getattr(self, "middleware_manager", None)  # one with no middlewares changes nothing
        if not node.arguments and not (middleware and middleware.middlewares):
            field = self.schema.get_field(parent_type, node.name.value)  # type: ignore[attr-defined]
            leaf = plain_leaf(field) if field is not None else None
            if leaf is not None:
                try:
                    value = field.resolve(source, None)  # type: ignore[union-attr,misc]
                    serialized = None if value is None else leaf.serialize(value)
                except Exception:  # graphql-core's path below reports it, on this field
                    serialized = None
                if serialized is not None and serialized is not Undefined and not isawaitable(serialized):
                    return serialized
        return super().execute_field(parent_type, source, field_details_list, *rest)  # type: ignore[misc]
