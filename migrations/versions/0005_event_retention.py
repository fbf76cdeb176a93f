"""export events: retention (payload may be pruned, pruned_at, unpruned index)

Finished events lose their payloads after ``host.retention_days``: the payload column
becomes nullable, ``pruned_at`` says when it was taken, and a partial index holds the
finished events not yet pruned, so the hourly pass never reads the rest. SQLite cannot
drop a NOT NULL in place: the batch rebuilds ``export_events`` once.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The models' condition, frozen as it was when this revision was written.
UNPRUNED = sa.text("pruned_at IS NULL AND status IN ('done', 'superseded', 'discarded')")


def upgrade() -> None:
    with op.batch_alter_table("export_events") as batch_op:
        batch_op.alter_column("payload", existing_type=sa.JSON(), nullable=True)
        batch_op.add_column(sa.Column("pruned_at", sa.DateTime(), nullable=True))
    op.create_index(
        "ix_export_events_unpruned",
        "export_events",
        ["updated_at"],
        unique=False,
        sqlite_where=UNPRUNED,
        postgresql_where=UNPRUNED,
    )


def downgrade() -> None:
    op.drop_index("ix_export_events_unpruned", table_name="export_events")
    # Pruned events have no payload left to restore: an empty one keeps NOT NULL.
    op.execute(sa.text("UPDATE export_events SET payload = '{}' WHERE payload IS NULL"))
    with op.batch_alter_table("export_events") as batch_op:
        batch_op.drop_column("pruned_at")
        batch_op.alter_column("payload", existing_type=sa.JSON(), nullable=False)
