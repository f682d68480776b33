"""A project's running-runs quota, and why a queued run waits (its project at that quota).

Revision ID: q001
Revises: st02
Create Date: 2026-12-06 04:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "q001"
down_revision: str | None = "st02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("project_quotas", sa.Column("max_running_runs", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("waiting", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "waiting")
    op.drop_column("project_quotas", "max_running_runs")
