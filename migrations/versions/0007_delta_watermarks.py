"""watermarks: where each connector's next delta import starts

A delta import reads what the target changed since a position (a timestamp, a change
number); the position is kept in the space so that it survives restarts. A database
without the table simply has no watermark: the first delta import falls back to a full
import, which stores one.

Revision ID: 0007_delta_watermarks
Revises: 0006_multivalue
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_delta_watermarks"
down_revision = "0006_multivalue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watermarks",
        sa.Column("connector", sa.String(length=200), nullable=False),
        sa.Column("watermark", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connector"),
    )


def downgrade() -> None:
    op.drop_table("watermarks")
