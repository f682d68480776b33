"""Parsed and validated documents kept for the documents sent again and again (the dashboard's page, a
client's ``startRun``): graphql-core's validation walks the whole document with every rule each time,
which is the largest share of a small operation's CPU.

strawberry's ``ParserCache`` keeps the parsed documents. Its ``ValidationCache`` is not used: it writes
its result over ``pre_execution_errors``, so the refusals our own ``on_validate`` policies put there
(rate limit, input and document limits) would be lost; ``CachedValidation`` validates only where none
refused, as strawberry's own step does. Both caches are bounded (LRU), so unique documents from one
client cannot grow a replica's memory; a document is at most ``MAX_TOKENS`` tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, GraphQLSchema
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

DOCUMENTS = 256  # kept per replica, parsed and validated each


@lru_cache(maxsize=DOCUMENTS)
def _validated(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> tuple[GraphQLError, ...]:
    return tuple(validate_document(schema, document, rules))


class CachedValidation(SchemaExtension):
    """graphql-core's validation, once per (document, rules) while the document stays in the cache."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            # A copy each time: errors are reworded (suggestions hidden) and added to by later steps.
            errors = _validated(context.schema._schema, context.graphql_document, context.validation_rules)
            context.pre_execution_errors = list(errors)
        yield
