"""The GraphQL schema: schema.graphql is the printed schema, and the contract of DESIGN §5 holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLObjectType, GraphQLSchema

from ptw.api.schema import SCHEMA_FILE, main, printed, schema

# DESIGN §5, root fields: name -> ({argument: type}, return type). Core names are fixed; more may exist.
CONTRACT: dict[str, dict[str, tuple[dict[str, str], str]]] = {
    "Query": {
        "node": ({"id": "ID!"}, "Node"),
        "viewer": ({}, "Viewer!"),
        "workflows": ({"projectId": "ID", "first": "Int", "after": "String"}, "WorkflowConnection!"),
        "workflow": ({"id": "ID", "name": "String"}, "Workflow"),
        "runs": (
            {"filter": "RunFilter", "orderBy": "RunOrder", "first": "Int", "after": "String"},
            "RunConnection!",
        ),
        "run": ({"id": "ID!"}, "Run"),
        "optimizations": (
            {"filter": "OptimizationFilter", "first": "Int", "after": "String"},
            "OptimizationConnection!",
        ),
        "optimization": ({"id": "ID!"}, "Optimization"),
        "executorPool": ({}, "ExecutorPool!"),
    },
    "Mutation": {
        "createProject": ({"name": "String!"}, "Project!"),
        "createApiKey": ({"projectId": "ID!", "role": "Role!", "name": "String"}, "NewApiKey!"),
        "revokeApiKey": ({"id": "ID!"}, "ApiKey!"),
        "registerWorkflow": ({"input": "RegisterWorkflowInput!"}, "Workflow!"),
        "startRun": ({"input": "StartRunInput!"}, "Run!"),
        "cancelRun": ({"id": "ID!"}, "Run!"),
        "logMetrics": ({"runId": "ID!", "points": "[MetricInput!]!"}, "Int!"),
        "startOptimization": ({"input": "StartOptimizationInput!"}, "Optimization!"),
        "cancelOptimization": ({"id": "ID!"}, "Optimization!"),
    },
    "Subscription": {
        "runMetrics": ({"runId": "ID!", "keys": "[String!]", "after": "String"}, "MetricBatch!"),
        "runEvents": ({"runId": "ID!"}, "RunEvent!"),
        "projectRuns": ({"projectId": "ID!"}, "Run!"),
        "optimizationProgress": ({"optimizationId": "ID!"}, "OptimizationEvent!"),
    },
}

# DESIGN §5, fields of the other types (names only where the brief gives no type).
TYPE_FIELDS: dict[str, set[str]] = {
    "Run": {
        "id",
        "workflow",
        "project",
        "status",
        "params",
        "attempt",
        "device",
        "createdAt",
        "startedAt",
        "finishedAt",
        "error",
        "summary",
        "metricKeys",
        "latestMetrics",
        "metrics",
        "checkpoints",
        "optimizationResult",
    },
    "Viewer": {"id", "name", "projects"},
    "Project": {"id", "name", "role"},
    "NewApiKey": {"id", "secret", "role", "project"},
    "ApiKey": {"id", "name", "prefix", "createdAt", "revokedAt", "lastUsedAt"},
    "Workflow": {"id", "name", "entrypoint", "paramsSchema", "defaults", "builtin", "runs"},
    "MetricPoint": {"key", "step", "value", "timestamp"},
    "MetricSeries": {"key", "total", "points", "cursor"},
    "MetricBatch": {"runId", "points", "columns", "cursor"},
    "Optimization": {
        "id",
        "workflow",
        "kind",
        "status",
        "objective",
        "space",
        "sampler",
        "pruner",
        "maxTrials",
        "maxParallel",
        "results",
        "best",
    },
    "ExecutorPool": {"workers", "busy", "queueDepth", "desiredWorkers"},
    "OptimizationResult": {"id", "config", "value", "state", "run", "metrics"},
    "PageInfo": {"hasNextPage", "endCursor"},
    "RunConnection": {"edges", "pageInfo"},
    "RunEdge": {"node", "cursor"},
}
INPUT_FIELDS: dict[str, set[str]] = {
    "StartRunInput": {"workflowId", "projectId", "params", "idempotencyKey"},
    "RegisterWorkflowInput": {
        "projectId",
        "name",
        "entrypoint",
        "paramsSchema",
        "defaults",
        "gpus",
        "timeoutSeconds",
    },
    "StartOptimizationInput": {
        "workflowId",
        "projectId",
        "kind",
        "objective",
        "direction",
        "space",
        "sampler",
        "pruner",
        "maxTrials",
        "maxParallel",
    },
    "MetricInput": {"key", "step", "value", "timestamp"},
    "RunFilter": {"projectId", "workflowId", "status"},
}
ENUMS: dict[str, set[str]] = {
    "Role": {"ADMIN", "MEMBER", "VIEWER"},
    "OptimizationKind": {"HYPERPARAMETER_SEARCH", "PERFORMANCE_TUNING"},
    "OptimizationStatus": {"QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"},
    "Direction": {"MINIMIZE", "MAXIMIZE"},
    "ResultState": {"RUNNING", "COMPLETE", "PRUNED", "FAILED"},
    "RunStatus": {
        "QUEUED",
        "STARTING",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
        "PRUNED",
        "CANCELLING",
    },
}
NODES = {"Run", "Workflow", "Optimization", "OptimizationResult", "Project", "ApiKey"}


@pytest.fixture(scope="module")
def core() -> GraphQLSchema:
    return schema._schema


def test_committed_schema_is_the_printed_schema() -> None:
    assert SCHEMA_FILE.read_text() == printed(), (
        "schema.graphql is out of date: run `python -m ptw.api.schema`"
    )


def test_check_mode_fails_on_drift(tmp_path: Path) -> None:
    stale = tmp_path / "schema.graphql"
    stale.write_text("type Query { old: Int }\n")
    assert main(["--check", "--output", str(stale)]) == 1
    assert main(["--output", str(stale)]) == 0
    assert main(["--check", "--output", str(stale)]) == 0


@pytest.mark.parametrize(
    ("root", "field"), [(root, field) for root, fields in CONTRACT.items() for field in fields]
)
def test_root_field_of_the_contract(core: GraphQLSchema, root: str, field: str) -> None:
    arguments, returns = CONTRACT[root][field]
    root_type = core.get_type(root)
    assert isinstance(root_type, GraphQLObjectType)
    assert field in root_type.fields, f"{root}.{field} is missing"
    found = root_type.fields[field]
    assert str(found.type) == returns
    for name, type_ in arguments.items():
        assert name in found.args, f"{root}.{field}({name}:) is missing"
        assert str(found.args[name].type) == type_, f"{root}.{field}({name}:)"
    extra_required = [n for n, a in found.args.items() if n not in arguments and str(a.type).endswith("!")]
    assert not extra_required, f"{root}.{field} requires arguments outside the contract: {extra_required}"


def test_types_of_the_contract(core: GraphQLSchema) -> None:
    for name, fields in {**TYPE_FIELDS, **INPUT_FIELDS}.items():
        type_ = core.get_type(name)
        assert type_ is not None, f"type {name} is missing"
        assert fields <= set(type_.fields), f"{name} lacks {fields - set(type_.fields)}"  # type: ignore[union-attr]
    for name, values in ENUMS.items():
        assert set(core.get_type(name).values) == values  # type: ignore[union-attr]
    for name in NODES:
        assert "Node" in {i.name for i in core.get_type(name).interfaces}  # type: ignore[union-attr]
    run_metrics = core.get_type("Run").fields["metrics"]  # type: ignore[union-attr]
    assert run_metrics.args["maxPoints"].default_value == 500
    assert str(core.get_type("MetricPoint").fields["timestamp"].type) == "DateTime!"  # type: ignore[union-attr]
