"""Artifacts: checkpoints and named files of runs (name, kind), and each workflow's checkpoint retention.

Revision ID: st02
Revises: st01
Create Date: 2026-12-01 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "st02"
down_revision: str | None = "st01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("name", sa.String(length=200), server_default="", nullable=False))
        batch.add_column(sa.Column("kind", sa.String(length=16), server_default="checkpoint", nullable=False))
    op.create_table(
        "artifact_retention",
        sa.Column("workflow_id", sa.String(length=36), nullable=False),
        sa.Column("keep_last", sa.Integer(), nullable=False),
        sa.Column("best_by", sa.String(length=200), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_artifact_retention_workflow_id_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workflow_id", name=op.f("pk_artifact_retention")),
    )


def downgrade() -> None:
    op.drop_table("artifact_retention")
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("kind")
        batch.drop_column("name")
