"""objects: indexes on the target anchor and for listing

A full import looks objects up by the anchor the target holds them under; without
an index each batch scanned every object. Lists count and page a connector's visible
objects in anchor order, which the listing index answers without reading the rows.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch_op:
        batch_op.create_index(
            "ix_objects_target_anchor", ["connector", "target_anchor"], unique=False
        )
        batch_op.create_index("ix_objects_listing", ["connector", "state", "anchor"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("objects") as batch_op:
        batch_op.drop_index("ix_objects_listing")
        batch_op.drop_index("ix_objects_target_anchor")
