"""Runs carry a name, tags and notes that a member may edit.

Revision ID: c001
Revises: 0003
Create Date: 2026-12-01 21:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c001"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        # Existing rows: an empty name reads as the default derived from the run's id.
        batch.add_column(sa.Column("name", sa.String(200), server_default="", nullable=False))
        batch.add_column(sa.Column("tags", _json, server_default="[]", nullable=False))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("notes")
        batch.drop_column("tags")
        batch.drop_column("name")
