"""Schemathesis fuzzing of the GraphQL schema against the running app (`ptw serve`): documents generated
from the schema's introspection, valid and malformed arguments alike, for every query and mutation.
Whatever comes, the answer is never a server error and never shows an internal (traceback, SQL, path)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.e2e.conftest import Server

# What a masked error must never show: a Python traceback or source path, SQL, or a driver's name.
INTERNALS = re.compile(
    r"Traceback \(most recent call last\)|File \"/|\.py\", line|sqlalchemy|sqlite3|asyncpg|"
    r"SELECT .* FROM|INSERT INTO|/work/|site-packages",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # No executors (started runs just queue) and no rate limit (the fuzzer sends thousands of requests).
    server = Server(tmp_path_factory.mktemp("ptw-fuzz"), executors=0, env={"PTW_RATE_LIMIT": "0"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def graphql_schema(fuzzed: Server) -> Any:
    return schemathesis.graphql.from_url(f"{fuzzed.url}/graphql", headers=auth(fuzzed))


def auth(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.key}"}


def no_internals(response: Any) -> None:
    """Every error has a code, and nothing in the body reveals how the server is built."""
    text = response.text
    match = INTERNALS.search(text)
    assert match is None, f"internal detail {match.group(0)!r} in {text[:500]}"
    body = response.json()
    for error in body.get("errors") or []:
        assert (error.get("extensions") or {}).get("code"), f"error without a code: {error}"


# Schemathesis' pytest plugin (``schema.parametrize``) does not run under pytest 9, so each operation's
# strategy is driven by hypothesis directly: the same generated cases and checks, one test for all.
FUZZ = settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_no_document_the_schema_allows_breaks_the_server(fuzzed: Server, graphql_schema: Any) -> None:
    operations = [result.ok() for result in graphql_schema.get_all_operations()]
    assert len(operations) > 10  # every query and mutation field, introspected from the running app

    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            # Not ``call_and_validate``: its GraphQL checks fail on any error, and refusing a malformed
            # id or a bad argument with BAD_USER_INPUT is the right answer here.
            response = case.call(headers=auth(fuzzed))
            assert response.status_code < 500, response.text[:500]
            no_internals(response)
            assert "Unexpected error." not in response.text, f"{case.body}\n{fuzzed.output()}"

        fuzz()
