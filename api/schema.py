"""The strawberry schema: every feature's queries, mutations and subscriptions, and the request policies.

``python -m ptw.api.schema`` writes the printed schema to ``schema.graphql``; ``--check`` fails on drift.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from ptw.api.document_cache import CachedParse, CachedValidation
from ptw.api.document_limits import DocumentLimits, document_limit
from ptw.api.errors import ErrorPolicy, log_unexpected
from ptw.api.input_limits import InputLimits, input_limit
from ptw.api.leaf_fields import PlainLeafFields
from ptw.api.limits import RateLimit, hide_suggestions
from ptw.api.metrics.mutations import MetricMutations
from ptw.api.metrics.subscriptions import MetricSubscriptions
from ptw.api.node_lookup import NodeQueries
from ptw.api.optimizations.mutations import OptimizationMutations
from ptw.api.optimizations.queries import OptimizationQueries
from ptw.api.optimizations.subscriptions import OptimizationSubscriptions
from ptw.api.optimizations.types import OptimizationResult
from ptw.api.pool.queries import PoolQueries
from ptw.api.projects.mutations import ProjectMutations
from ptw.api.projects.queries import ProjectQueries
from ptw.api.projects.types import ApiKey, Project
from ptw.api.runs.artifacts import ArtifactMutations
from ptw.api.runs.mutations import RunMutations
from ptw.api.runs.queries import RunQueries
from ptw.api.runs.subscriptions import RunSubscriptions
from ptw.api.runs.tracking import TrackingMutations
from ptw.api.shared_events import SharedEventExecutionContext
from ptw.api.telemetry import OperationMetrics
from ptw.api.workflows.mutations import WorkflowMutations
from ptw.api.workflows.queries import WorkflowQueries

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"

# Limits on what one document may ask for (DESIGN §8, docs/security.md): the token limit stops the parser
# itself; the shape limits are in api/document_limits.py, what is counted for cost in api/cost.py.
MAX_TOKENS = 5_000
DEFAULT_MAX_COST = 100_000  # PTW_MAX_QUERY_COST

Query = merge_types(
    "Query",
    (NodeQueries, ProjectQueries, WorkflowQueries, RunQueries, OptimizationQueries, PoolQueries),
)
Mutation = merge_types(
    "Mutation",
    (
        ProjectMutations,
        WorkflowMutations,
        RunMutations,
        ArtifactMutations,
        TrackingMutations,
        MetricMutations,
        OptimizationMutations,
    ),
)
Subscription = merge_types("Subscription", (MetricSubscriptions, RunSubscriptions, OptimizationSubscriptions))


class PtwExecutionContext(PlainLeafFields, SharedEventExecutionContext):
    """Plain leaves read directly (api/leaf_fields.py); shared events executed once (api/shared_events.py)."""


class PtwSchema(strawberry.Schema):
    suggestions = True

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors are the client's business; only unexpected ones are logged, with their traceback.
        log_unexpected(errors)
        if not self.suggestions:
            hide_suggestions(errors)


def build_schema(
    *,
    introspection: bool = True,
    suggestions: bool = True,
    max_cost: int = DEFAULT_MAX_COST,
    inputs: InputLimits | None = None,
) -> strawberry.Schema:
    """The schema with its request policies; production turns ``introspection`` and ``suggestions`` off
    (they map the schema for an attacker) unless the settings turn them on.

    The refusals run cheapest first: the rate limit (one token), the token limit (while parsing), the
    input values, the document's shape and cost (one linear pass each), and only then graphql-core's
    validation."""
    extensions: list[Any] = [
        ErrorPolicy,
        OperationMetrics,
        RateLimit,
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        input_limit(inputs or InputLimits()),
        document_limit(DocumentLimits(max_cost=max_cost)),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    # Last: the documents parsed and validated once (after the refusals above, which stay per request).
    extensions += [CachedParse, CachedValidation]
    built = PtwSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Types reachable only through node(id:) must still be in the schema.
        types=[Project, ApiKey, OptimizationResult],
        extensions=extensions,
        execution_context_class=PtwExecutionContext,
    )
    built.suggestions = suggestions
    return built


schema = build_schema()


def printed() -> str:
    return schema.as_str() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptw.api.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when schema.graphql is out of date")
    parser.add_argument("--output", type=Path, default=SCHEMA_FILE)
    args = parser.parse_args(argv)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != printed():
            print(f"{args.output} is out of date: run python -m ptw.api.schema", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(printed())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
