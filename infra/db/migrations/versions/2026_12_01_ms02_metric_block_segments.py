"""A block of metric points may be stored as several segments (rows of ascending, disjoint steps), so that a
run logging forward appends rows instead of rewriting them: the segment joins the primary key.

Revision ID: ms02
Revises: h001
Create Date: 2026-12-01 22:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ms02"
down_revision: str | None = "h001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("metric_blocks") as batch:
        batch.add_column(sa.Column("segment", sa.Integer(), server_default="0", nullable=False))
        batch.drop_constraint("pk_metric_blocks", type_="primary")
        batch.create_primary_key("pk_metric_blocks", ["series_id", "block", "segment"])
    with op.batch_alter_table("metric_blocks") as batch:
        batch.alter_column("segment", server_default=None)


def downgrade() -> None:
    # Segments of one block become one row again only by merging them: refuse rather than lose points.
    bind = op.get_bind()
    split = bind.execute(sa.text("SELECT count(*) FROM metric_blocks WHERE segment > 0")).scalar_one()
    if split:
        raise RuntimeError(f"{split} metric block segments would collide: downgrade needs them merged first")
    with op.batch_alter_table("metric_blocks") as batch:
        batch.drop_constraint("pk_metric_blocks", type_="primary")
        batch.create_primary_key("pk_metric_blocks", ["series_id", "block"])
        batch.drop_column("segment")
