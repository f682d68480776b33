"""Tables of the relational store; repositories map their rows to the domain's dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ptw.infra.db.types import Json, UtcDateTime

# Named constraints keep migrations reproducible: alembic can drop what it can name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = String(36)  # uuid4 strings; text rather than a uuid type so any id a client sends is just "not found"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: Json, list[str]: Json}


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class ProjectQuotaRow(Base):
    __tablename__ = "project_quotas"

    project_id: Mapped[str] = mapped_column(
        Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    max_queued_runs: Mapped[int | None] = mapped_column(Integer)
    max_optimizations: Mapped[int | None] = mapped_column(Integer)
    max_running_runs: Mapped[int | None] = mapped_column(Integer)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class MembershipRow(Base):
    __tablename__ = "memberships"

    key_id: Mapped[str] = mapped_column(Id, ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))


class WorkflowRow(Base):
    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        # NULLs are distinct in a unique constraint, so built-in names (project_id NULL) need their own index.
        Index(
            "uq_workflows_builtin_name",
            "name",
            unique=True,
            sqlite_where=text("project_id IS NULL"),
            postgresql_where=text("project_id IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    project_id: Mapped[str | None] = mapped_column(Id, ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    entrypoint: Mapped[str] = mapped_column(String(300))
    params_schema: Mapped[dict[str, Any]]
    defaults: Mapped[dict[str, Any]]
    gpus: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    processes_per_node: Mapped[int | None] = mapped_column(Integer)
    nodes: Mapped[int] = mapped_column(Integer, server_default="1")
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    pool: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime | None]


class OptimizationRow(Base):
    __tablename__ = "optimizations"
    __table_args__ = (Index(None, "project_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    project_id: Mapped[str] = mapped_column(Id, ForeignKey("projects.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(Id, ForeignKey("workflows.id"))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    objective: Mapped[str | None] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(16))
    space: Mapped[dict[str, Any]]
    sampler: Mapped[str | None] = mapped_column(String(64))
    pruner: Mapped[str | None] = mapped_column(String(64))
    max_trials: Mapped[int | None] = mapped_column(Integer)
    max_parallel: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    time_budget_seconds: Mapped[int | None] = mapped_column(Integer)
    params: Mapped[dict[str, Any]]
    started_at: Mapped[datetime | None]


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index(None, "project_id", "created_at", "id"),
        UniqueConstraint("project_id", "idempotency_key"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    project_id: Mapped[str] = mapped_column(Id, ForeignKey("projects.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(Id, ForeignKey("workflows.id"), index=True)
    params: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    resource_class: Mapped[str] = mapped_column(String(32))
    executor: Mapped[str | None] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    optimization_id: Mapped[str | None] = mapped_column(
        Id, ForeignKey("optimizations.id", ondelete="SET NULL"), index=True
    )
    metric_seq: Mapped[int] = mapped_column(BigInteger)
    metric_keys: Mapped[list[str]]
    # Liveness of the attempt in progress, written by its executor (see domain/services/run_monitor.py).
    heartbeat_at: Mapped[datetime | None]
    drains: Mapped[int] = mapped_column(Integer, server_default="0")
    name: Mapped[str] = mapped_column(String(200), server_default="")
    tags: Mapped[list[str]] = mapped_column(server_default="[]")
    notes: Mapped[str | None] = mapped_column(Text)
    external: Mapped[bool] = mapped_column(server_default=false())
    waiting: Mapped[str | None] = mapped_column(Text)  # why a QUEUED run is not started yet (a quota)


class MetricSeriesRow(Base):
    """One key of a run: the integer every block of it refers to, its point count and its latest point
    (highest step), kept on write so that ``latestMetrics`` and ``total`` never read a block."""

    __tablename__ = "metric_series"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(Id, ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(BigInteger)
    latest_step: Mapped[int | None] = mapped_column(BigInteger)
    latest_value: Mapped[float | None] = mapped_column(Double)
    latest_ts: Mapped[float | None] = mapped_column(Double)  # epoch seconds, like the blocks'


class MetricBlockRow(Base):
    """Points of one series in steps ``block * BLOCK_STEPS ...`` packed, with their summary: the whole
    block, or one segment of it (ascending, disjoint steps). See infra/db/metric_blocks.py."""

    __tablename__ = "metric_blocks"
    __table_args__ = (Index(None, "series_id", "max_seq"),)  # replay after a cursor: the blocks it touched

    series_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metric_series.id", ondelete="CASCADE"), primary_key=True
    )
    block: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    segment: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    first_step: Mapped[int] = mapped_column(BigInteger)
    first_value: Mapped[float] = mapped_column(Double)
    first_ts: Mapped[float] = mapped_column(Double)
    last_step: Mapped[int] = mapped_column(BigInteger)
    last_value: Mapped[float] = mapped_column(Double)
    last_ts: Mapped[float] = mapped_column(Double)
    min_step: Mapped[int] = mapped_column(BigInteger)
    min_value: Mapped[float] = mapped_column(Double)
    min_ts: Mapped[float] = mapped_column(Double)
    max_step: Mapped[int] = mapped_column(BigInteger)
    max_value: Mapped[float] = mapped_column(Double)
    max_ts: Mapped[float] = mapped_column(Double)
    min_seq: Mapped[int] = mapped_column(BigInteger)
    max_seq: Mapped[int] = mapped_column(BigInteger)
    ts_base: Mapped[int] = mapped_column(BigInteger)  # epoch microseconds the packed timestamps start from
    steps: Mapped[bytes | None] = mapped_column(LargeBinary)  # NULL: consecutive from first_step
    values: Mapped[bytes] = mapped_column(LargeBinary)
    timestamps: Mapped[bytes] = mapped_column(LargeBinary)
    seqs: Mapped[bytes] = mapped_column(LargeBinary)


class CheckpointRow(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (Index(None, "run_id", "created_at"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    run_id: Mapped[str] = mapped_column(Id, ForeignKey("runs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(BigInteger)
    uri: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    name: Mapped[str] = mapped_column(String(200), server_default="")
    kind: Mapped[str] = mapped_column(String(16), server_default="checkpoint")


class OptimizationResultRow(Base):
    __tablename__ = "optimization_results"
    __table_args__ = (
        Index(None, "optimization_id", "created_at", "id"),
        # A trial number is taken once: two drivers can never both create trial n (NULL: tuning results).
        UniqueConstraint("optimization_id", "number"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    optimization_id: Mapped[str] = mapped_column(Id, ForeignKey("optimizations.id", ondelete="CASCADE"))
    config: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Double)
    run_id: Mapped[str | None] = mapped_column(Id, ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    metrics: Mapped[dict[str, Any]]
    number: Mapped[int | None] = mapped_column(Integer)
    intermediate: Mapped[dict[str, Any]]  # {"step": value}: JSON object keys are strings
    search_state: Mapped[dict[str, Any]]


class RunLogRow(Base):
    """A stored line of a run's output (see ``domain.run_story``); the key orders a run's lines."""

    __tablename__ = "run_logs"

    run_id: Mapped[str] = mapped_column(Id, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    stream: Mapped[str] = mapped_column(String(16))
    line: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class RunAttemptRow(Base):
    __tablename__ = "run_attempts"

    run_id: Mapped[str] = mapped_column(Id, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    executor: Mapped[str | None] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)


class RetentionRow(Base):
    """How many checkpoints runs of a workflow keep (``domain.artifacts.Retention``); none: the default."""

    __tablename__ = "artifact_retention"

    workflow_id: Mapped[str] = mapped_column(
        Id, ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True
    )
    keep_last: Mapped[int] = mapped_column(Integer)
    best_by: Mapped[str | None] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(16))
