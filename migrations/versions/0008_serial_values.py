"""object_values keyed by the object's serial number, in a table without rowid

The value index was keyed by the object's id, a random UUID: each batch of an import
wrote its rows all over the index's B-tree, and a commit rewrote nearly every page of
it. Objects get a ``serial`` (creation order) and the index is keyed by it, so new
rows are appended; the table is its own key (WITHOUT ROWID), one B-tree less per row.
A trigger deletes an object's rows with it, as the foreign key's cascade did, without
the key's check of every inserted row.
Rows of objects that exist keep their values: they are copied under the new key.

Revision ID: 0008_serial_values
Revises: 0007_delta_watermarks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_serial_values"
down_revision = "0007_delta_watermarks"
branch_labels = None
depends_on = None


# What the foreign key's ON DELETE CASCADE did, without its check of every inserted row.
_CASCADE = """
CREATE TRIGGER objects_values_gone AFTER DELETE ON objects
BEGIN
    DELETE FROM object_values WHERE object_serial = old.serial;
END
"""
# PostgreSQL's trigger runs a function; serials come from a sequence there, as
# several hosts insert objects at once (SQLite's one writer takes max + 1).
_CASCADE_POSTGRESQL = (
    "CREATE FUNCTION objects_values_gone() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN DELETE FROM object_values WHERE object_serial = OLD.serial; RETURN OLD; END $$",
    "CREATE TRIGGER objects_values_gone AFTER DELETE ON objects "
    "FOR EACH ROW EXECUTE FUNCTION objects_values_gone()",
)
SEQUENCE = "objects_serial_seq"  # models.SERIAL_SEQUENCE


def _postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def _swap_values(columns: list[sa.Column], key: tuple[str, ...], copy: str, **kw: bool) -> None:
    op.create_table("object_values_rebuilt", *columns, sa.PrimaryKeyConstraint(*key), **kw)
    op.execute(copy)
    op.drop_index("ix_object_values_lookup", table_name="object_values")
    op.drop_table("object_values")
    op.rename_table("object_values_rebuilt", "object_values")
    op.create_index(
        "ix_object_values_lookup", "object_values", ["connector", "attr", "value"], unique=False
    )


def _text_columns() -> list[sa.Column]:
    # The key's columns first, in the key's order: SQLite 3.40's quick_check (the
    # backup's check) reports a false "NULL value" in a WITHOUT ROWID table whose
    # other columns are declared between those of its key.
    return [
        sa.Column("attr", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("connector", sa.String(length=200), nullable=False),
    ]


def upgrade() -> None:
    op.add_column("objects", sa.Column("serial", sa.Integer(), nullable=True))
    if _postgresql():
        op.execute(f"CREATE SEQUENCE {SEQUENCE}")
        op.execute(f"UPDATE objects SET serial = nextval('{SEQUENCE}')")
    else:
        op.execute("UPDATE objects SET serial = rowid")
    op.create_index("ix_objects_serial", "objects", ["serial"], unique=True)
    _swap_values(
        [
            sa.Column("object_serial", sa.Integer(), nullable=False),
            *_text_columns(),
        ],
        ("object_serial", "attr", "value"),
        "INSERT INTO object_values_rebuilt (object_serial, attr, connector, value) "
        "SELECT o.serial, v.attr, v.connector, v.value FROM object_values v "
        "JOIN objects o ON o.id = v.object_id ORDER BY o.serial, v.attr, v.value",
        sqlite_with_rowid=False,
    )
    for statement in _CASCADE_POSTGRESQL if _postgresql() else (_CASCADE,):
        op.execute(statement)


def downgrade() -> None:
    if _postgresql():
        op.execute("DROP TRIGGER objects_values_gone ON objects")
        op.execute("DROP FUNCTION objects_values_gone()")
    else:
        op.execute("DROP TRIGGER objects_values_gone")
    _swap_values(
        [
            sa.Column("object_id", sa.String(length=36), nullable=False),
            *_text_columns(),
            sa.ForeignKeyConstraint(["object_id"], ["objects.id"], ondelete="CASCADE"),
        ],
        ("object_id", "attr", "value"),
        "INSERT INTO object_values_rebuilt (object_id, attr, connector, value) "
        "SELECT o.id, v.attr, v.connector, v.value FROM object_values v "
        "JOIN objects o ON o.serial = v.object_serial",
    )
    op.drop_index("ix_objects_serial", table_name="objects")
    op.drop_column("objects", "serial")
    if _postgresql():
        op.execute(f"DROP SEQUENCE {SEQUENCE}")
