"""cluster_hosts: the hosts serving a shared connector space, and what each leads

Hosts on one PostgreSQL space write a heartbeat here, and the connectors whose
imports they run (they hold that connector's advisory lock), so that any host and
the command line can tell who is up and who imports. A host on SQLite is alone and
writes nothing here.

Revision ID: 0009_cluster_hosts
Revises: 0008_serial_values
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_cluster_hosts"
down_revision = "0008_serial_values"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_hosts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("leads", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("cluster_hosts")
