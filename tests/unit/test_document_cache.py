"""Documents are validated once while cached; a refusal made before validation is never overwritten."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter, SchemaExtension

from ptw.api import document_cache
from ptw.api.document_cache import CACHED_CHARS, CachedParse, CachedValidation


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, name: str = "you") -> str:
        return f"hello {name}"


class RefuseAll(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        self.execution_context.pre_execution_errors = [GraphQLError("refused by policy")]
        yield


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The documents graphql-core was asked to validate."""
    seen: list[str] = []
    real = document_cache.validate_document

    def counting(schema: Any, document: Any, rules: Any) -> Any:
        seen.append(document.loc.source.body)
        return real(schema, document, rules)

    document_cache._validated.cache_clear()
    document_cache._parsed.cache_clear()
    monkeypatch.setattr(document_cache, "validate_document", counting)
    yield seen
    document_cache._validated.cache_clear()


def schema(*extensions: Any) -> strawberry.Schema:
    return strawberry.Schema(query=Query, extensions=[*extensions, CachedParse, CachedValidation])


def test_a_document_sent_again_is_validated_once(validations: list[str]) -> None:
    s = schema()
    for name in ("a", "b", "c"):
        result = s.execute_sync("query($n: String!) { hello(name: $n) }", variable_values={"n": name})
        assert result.errors is None and result.data == {"hello": f"hello {name}"}
    assert validations == ["query($n: String!) { hello(name: $n) }"]
    s.execute_sync("{ hello }")
    assert len(validations) == 2


def test_invalid_documents_keep_failing_with_their_own_error_list(validations: list[str]) -> None:
    s = schema()
    first = s.execute_sync("{ nosuch }")
    first.errors.append(GraphQLError("added by a later step"))  # type: ignore[union-attr]
    second = s.execute_sync("{ nosuch }")
    assert first.errors and second.errors
    assert [e.message for e in second.errors] == ["Cannot query field 'nosuch' on type 'Query'."]
    assert len(validations) == 1


def test_a_refusal_before_validation_stands(validations: list[str]) -> None:
    schema().execute_sync("{ hello }")  # cached as valid
    refused = schema(RefuseAll).execute_sync("{ hello }")
    assert refused.data is None
    assert [e.message for e in refused.errors or []] == ["refused by policy"]


def test_a_large_document_is_never_kept(validations: list[str]) -> None:
    padding = "x" * CACHED_CHARS
    query = f'{{ hello(name: "{padding}") }}'
    for _ in range(2):
        result = schema().execute_sync(query)
        assert result.errors is None and result.data == {"hello": f"hello {padding}"}
    assert validations == []  # validated by strawberry at each request, not through the cache
    assert document_cache._parsed.cache_info().currsize == 0


def test_the_token_limit_still_stops_the_parser(validations: list[str]) -> None:
    limited = schema(lambda: MaxTokensLimiter(max_token_count=5))
    result = limited.execute_sync('{ hello(name: "a") hello2: hello hello3: hello }')
    assert result.errors and "token" in result.errors[0].message.lower()
    assert limited.execute_sync("{ hello }").data == {"hello": "hello you"}
