"""Searches keep their state in the database: trial numbers (unique per search), reported values and the
sampler's state per result; optimizations gain fixed params, a time budget and their start time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("optimizations") as batch:
        batch.add_column(sa.Column("time_budget_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("params", JSON, server_default="{}", nullable=False))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("optimization_results") as batch:
        batch.add_column(sa.Column("number", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("intermediate", JSON, server_default="{}", nullable=False))
        batch.add_column(sa.Column("search_state", JSON, server_default="{}", nullable=False))
        batch.create_unique_constraint(
            op.f("uq_optimization_results_optimization_id_number"), ["optimization_id", "number"]
        )


def downgrade() -> None:
    with op.batch_alter_table("optimization_results") as batch:
        batch.drop_constraint(op.f("uq_optimization_results_optimization_id_number"), type_="unique")
        batch.drop_column("search_state")
        batch.drop_column("intermediate")
        batch.drop_column("number")
    with op.batch_alter_table("optimizations") as batch:
        batch.drop_column("started_at")
        batch.drop_column("params")
        batch.drop_column("time_budget_seconds")
