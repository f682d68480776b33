"""Schemathesis fuzzing of the GraphQL schema against the running app (`ptw serve`): documents generated
from the schema's introspection, valid and malformed arguments alike, for every query and mutation.
Whatever comes, the answer is never a server error and never shows an internal (traceback, SQL, path).
Hypothesis strategies add what the schema never generates: control characters, unpaired surrogates and
invalid UTF-8, values nested hundreds deep, lists past the input limit, and nested fragment spreads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# --- hostile values and documents, which the schema-driven fuzzing never generates --------------------

# Every code point, unpaired surrogates and control characters included (json.dumps escapes them).
HOSTILE_TEXT = st.text(st.characters(codec=None, categories=None), max_size=40) | st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "x\udfff", "\x1b[31m", "\u202e", "\ufeff", "\x7f"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4),
    max_leaves=30,
)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


DEEP = st.integers(1, 400).map(nested)
LONG_LISTS = st.integers(900, 5000).map(
    lambda n: [{"key": "loss", "step": i, "value": 1.0} for i in range(n)]
)

HOSTILE_OPERATIONS = [
    ("mutation($v: String!) { createProject(name: $v) { id } }", HOSTILE_TEXT),
    ("query($v: String!) { workflow(name: $v) { id } }", HOSTILE_TEXT),
    (
        'mutation($v: String!) { registerWorkflow(input: {name: $v, entrypoint: "a.b:c"}) { id } }',
        HOSTILE_TEXT,
    ),
    ('mutation($v: JSON) { startRun(input: {workflowId: "x", params: $v}) { id } }', JSON_VALUES | DEEP),
    ('mutation($v: String) { startRun(input: {workflowId: "x", idempotencyKey: $v}) { id } }', HOSTILE_TEXT),
    ('mutation($v: [MetricInput!]!) { logMetrics(runId: "x", points: $v) }', LONG_LISTS),
    (
        'mutation($v: [MetricInput!]!) { logMetrics(runId: "x", points: $v) }',
        st.lists(
            st.fixed_dictionaries({"key": HOSTILE_TEXT, "step": st.integers(0, 10), "value": st.just(1.0)}),
            min_size=1,
            max_size=3,
        ),
    ),
]


def spread_document(levels: int, fan_out: int) -> str:
    spreads = " ".join(["...F{next}"] * fan_out)
    chain = " ".join(f"fragment F{i} on Run {{ {spreads.format(next=i + 1)} }}" for i in range(levels))
    return (
        f"{{ runs(first: 1) {{ edges {{ node {{ ...F0 }} }} }} }} {chain} fragment F{levels} on Run {{ id }}"
    )


def raw_post(server: Server, body: bytes) -> httpx.Response:
    headers = {**auth(server), "Content-Type": "application/json"}
    return httpx.post(f"{server.url}/graphql", content=body, headers=headers, timeout=120)


def refused_cleanly(server: Server, response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code == 200:
        no_internals(response)
        assert "Unexpected error." not in response.text, server.output()
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_hostile_values_are_refused_cleanly(fuzzed: Server) -> None:
    for query, values in HOSTILE_OPERATIONS:
        fuzz_variable(fuzzed, query, values)


def fuzz_variable(server: Server, query: str, values: st.SearchStrategy[Any]) -> None:
    @FUZZ
    @given(value=values)
    def fuzz(value: Any) -> None:
        body = json.dumps({"query": query, "variables": {"v": value}}).encode()
        refused_cleanly(server, raw_post(server, body))

    fuzz()


@FUZZ
@given(levels=st.integers(1, 45), fan_out=st.integers(1, 3), garbage=st.binary(min_size=1, max_size=8))
def test_nested_fragments_and_invalid_utf8_are_refused_cleanly(
    fuzzed: Server, levels: int, fan_out: int, garbage: bytes
) -> None:
    document = {"query": spread_document(levels, fan_out)}
    refused_cleanly(fuzzed, raw_post(fuzzed, json.dumps(document).encode()))
    invalid = json.dumps(
        {"query": "query($v: String) { workflow(name: $v) { id } }", "variables": {"v": "MARK"}}
    )
    refused_cleanly(fuzzed, raw_post(fuzzed, invalid.encode().replace(b"MARK", b"\xff" + garbage)))
