"""Per-project quotas (queued runs, unfinished optimizations); a project without a row has the defaults.

Revision ID: h001
Revises: ms01
Create Date: 2026-12-01 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "h001"
down_revision: str | None = "ms01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_quotas",
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("max_queued_runs", sa.Integer(), nullable=True),
        sa.Column("max_optimizations", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_quotas_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_quotas")),
    )


def downgrade() -> None:
    op.drop_table("project_quotas")
