"""object_values: one row per value, so a multi-valued attribute indexes each value

The index held one row per (object, attribute); a multi-valued attribute holds
several values, and ``mail eq "x"`` must find the object by any of them. The key
becomes (object, attribute, value). The rows written so far stay valid (a single
value each), so they are copied over unchanged.

Revision ID: 0006_multivalue
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_multivalue"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = "object_id, attr, connector, value"


def _rebuild(key: tuple[str, ...]) -> None:
    """Recreate ``object_values`` with primary key ``key``, keeping its rows (SQLite
    cannot change a primary key in place)."""
    op.create_table(
        "object_values_rebuilt",
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("attr", sa.String(length=200), nullable=False),
        sa.Column("connector", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["object_id"], ["objects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(*key),
    )
    op.execute(
        f"INSERT INTO object_values_rebuilt ({_COLUMNS}) SELECT {_COLUMNS} FROM object_values"
    )
    op.drop_index("ix_object_values_lookup", table_name="object_values")
    op.drop_table("object_values")
    op.rename_table("object_values_rebuilt", "object_values")
    op.create_index(
        "ix_object_values_lookup", "object_values", ["connector", "attr", "value"], unique=False
    )


def upgrade() -> None:
    _rebuild(("object_id", "attr", "value"))


def downgrade() -> None:
    # Keeps one value per (object, attribute): the index of a version without sets.
    op.execute(
        "DELETE FROM object_values WHERE EXISTS (SELECT 1 FROM object_values other "
        "WHERE other.object_id = object_values.object_id AND other.attr = object_values.attr "
        "AND other.value < object_values.value)"
    )
    _rebuild(("object_id", "attr"))
