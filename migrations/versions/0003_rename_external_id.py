"""objects: target anchor (renames) and SCIM externalId

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch_op:
        batch_op.add_column(sa.Column("target_anchor", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.Text(), nullable=True))
    # Objects the target already holds are held under their current anchor.
    op.execute("UPDATE objects SET target_anchor = anchor WHERE confirmed IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("objects") as batch_op:
        batch_op.drop_column("external_id")
        batch_op.drop_column("target_anchor")
