"""Parsed and validated documents kept for the documents sent again and again (the dashboard's page, a
client's ``startRun``): graphql-core's validation walks the whole document with every rule each time,
which is the largest share of a small operation's CPU.

strawberry's ``ParserCache`` and ``ValidationCache`` are not used: the first would keep any document up to
the body limit (a 1 MiB string literal is one token), so 256 distinct large documents could hold hundreds
of MB; the second writes its result over ``pre_execution_errors``, so the refusals our own ``on_validate``
policies put there (rate limit, input and document limits) would be lost. Here only documents of at most
``CACHED_CHARS`` characters are kept, ``DOCUMENTS`` of them (least recently used out), and validation runs
only where no policy refused, as strawberry's own step does.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

DOCUMENTS = 256  # kept per replica, parsed and validated each
CACHED_CHARS = 16_384  # a larger document is parsed and validated at each request, never kept


@lru_cache(maxsize=DOCUMENTS)
def _parsed(query: str, options: tuple[tuple[str, Any], ...]) -> DocumentNode:
    return parse(query, **dict(options))


@lru_cache(maxsize=DOCUMENTS)
def _validated(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> tuple[GraphQLError, ...]:
    return tuple(validate_document(schema, document, rules))


def _cacheable(query: Any) -> bool:
    return isinstance(query, str) and len(query) <= CACHED_CHARS


class CachedParse(SchemaExtension):
    """A document parsed once while it stays in the cache (a large one: at each request, by strawberry)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and _cacheable(context.query):
            options = tuple(sorted(context.parse_options.items()))  # max_tokens (MaxTokensLimiter)
            context.graphql_document = _parsed(context.query, options)
        yield


class CachedValidation(SchemaExtension):
    """graphql-core's validation, once per (document, rules) while the document stays in the cache."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors is None and document is not None and _cacheable(context.query):
            # A copy each time: errors are reworded (suggestions hidden) and added to by later steps.
            errors = _validated(context.schema._schema, document, context.validation_rules)
            context.pre_execution_errors = list(errors)
        yield
