"""Workflows declare processes per node, nodes, a memory limit and the executor pool that runs them.

Revision ID: d001
Revises: c002
Create Date: 2026-12-01 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d001"
down_revision: str | None = "c002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("processes_per_node", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("nodes", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("memory_mb", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pool", sa.String(length=50), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        for column in ("pool", "memory_mb", "nodes", "processes_per_node"):
            batch.drop_column(column)
