"""Metric points are stored as blocks of steps per series (infra/db/metric_blocks.py) instead of a row per
point: every stored point is carried over, then metric_points is dropped.

Revision ID: ms01
Revises: d001
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from alembic import op

from ptw.infra.db.metric_blocks import Points, decode, encode, split
from ptw.infra.db.types import UtcDateTime

revision: str = "ms01"
down_revision: str | None = "d001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUMMARY = [
    sa.Column(f"{which}_{field}", sa.BigInteger() if field == "step" else sa.Double(), nullable=False)
    for which in ("first", "last", "min", "max")
    for field in ("step", "value", "ts")
]

points_table = sa.table(
    "metric_points",
    sa.column("run_id", sa.String()),
    sa.column("key", sa.String()),
    sa.column("step", sa.BigInteger()),
    sa.column("value", sa.Double()),
    sa.column("ts", UtcDateTime()),
    sa.column("seq", sa.BigInteger()),
)


def upgrade() -> None:
    op.create_table(
        "metric_series",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("latest_step", sa.BigInteger(), nullable=True),
        sa.Column("latest_value", sa.Double(), nullable=True),
        sa.Column("latest_ts", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_metric_series_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_series")),
        sa.UniqueConstraint("run_id", "key", name=op.f("uq_metric_series_run_id_key")),
    )
    op.create_table(
        "metric_blocks",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        *(sa.Column(c.name, c.type, nullable=False) for c in _SUMMARY),
        sa.Column("min_seq", sa.BigInteger(), nullable=False),
        sa.Column("max_seq", sa.BigInteger(), nullable=False),
        sa.Column("ts_base", sa.BigInteger(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=True),
        sa.Column("values", sa.LargeBinary(), nullable=False),
        sa.Column("timestamps", sa.LargeBinary(), nullable=False),
        sa.Column("seqs", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["metric_series.id"],
            name=op.f("fk_metric_blocks_series_id_metric_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("series_id", "block", name=op.f("pk_metric_blocks")),
    )
    op.create_index(
        op.f("ix_metric_blocks_series_id_max_seq"), "metric_blocks", ["series_id", "max_seq"], unique=False
    )
    _carry_points_over()
    op.drop_index(op.f("ix_metric_points_run_id_seq"), table_name="metric_points")
    op.drop_table("metric_points")


def _carry_points_over() -> None:
    """One series at a time, so that memory holds one series' points, never the table."""
    bind = op.get_bind()
    series = sa.table(
        "metric_series",
        sa.column("id", sa.Integer()),
        sa.column("run_id", sa.String()),
        sa.column("key", sa.String()),
        sa.column("count", sa.BigInteger()),
        sa.column("latest_step", sa.BigInteger()),
        sa.column("latest_value", sa.Double()),
        sa.column("latest_ts", sa.Double()),
    )
    blocks = sa.table("metric_blocks", *(sa.column(c) for c in _block_columns()))
    names = bind.execute(
        sa.select(points_table.c.run_id, points_table.c.key)
        .distinct()
        .order_by(points_table.c.run_id, points_table.c.key)
    ).all()
    for run_id, key in names:
        rows = bind.execute(
            sa.select(points_table.c.step, points_table.c.value, points_table.c.ts, points_table.c.seq)
            .where(points_table.c.run_id == run_id, points_table.c.key == key)
            .order_by(points_table.c.step)
        ).all()
        points = Points(
            np.array([r.step for r in rows], np.int64),
            np.array([r.value for r in rows], np.float64),
            np.array([r.ts.timestamp() for r in rows], np.float64),
            np.array([r.seq for r in rows], np.int64),
        )
        series_id = bind.execute(
            series.insert()
            .values(
                run_id=run_id,
                key=key,
                count=len(points),
                latest_step=int(points.steps[-1]),
                latest_value=float(points.values[-1]),
                latest_ts=float(points.timestamps[-1]),
            )
            .returning(series.c.id)
        ).scalar_one()
        bind.execute(blocks.insert(), [{"series_id": series_id, **encode(b, p)} for b, p in split(points)])


def _block_columns() -> list[str]:
    return [
        "series_id",
        "block",
        "count",
        *(c.name for c in _SUMMARY),
        "min_seq",
        "max_seq",
        "ts_base",
        "steps",
        "values",
        "timestamps",
        "seqs",
    ]


def downgrade() -> None:
    op.create_table(
        "metric_points",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("step", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_metric_points_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", "step", name=op.f("pk_metric_points")),
    )
    op.create_index(op.f("ix_metric_points_run_id_seq"), "metric_points", ["run_id", "seq"], unique=False)
    bind = op.get_bind()
    blocks = sa.table("metric_blocks", *(sa.column(c) for c in _block_columns()))
    series = sa.table("metric_series", sa.column("id"), sa.column("run_id"), sa.column("key"))
    found = bind.execute(
        sa.select(series.c.run_id, series.c.key, blocks).join(series, series.c.id == blocks.c.series_id)
    ).mappings()
    for row in found:
        points = decode(row)
        stamps = [datetime.fromtimestamp(t, UTC) for t in points.timestamps.tolist()]
        rows = zip(points.steps.tolist(), points.values.tolist(), stamps, points.seqs.tolist(), strict=True)
        bind.execute(
            points_table.insert(),
            [
                {"run_id": row["run_id"], "key": row["key"], "step": s, "value": v, "ts": t, "seq": q}
                for s, v, t, q in rows
            ],
        )
    op.drop_index(op.f("ix_metric_blocks_series_id_max_seq"), table_name="metric_blocks")
    op.drop_table("metric_blocks")
    op.drop_table("metric_series")
