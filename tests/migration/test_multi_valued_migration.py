"""Revision 0006_multivalue: the value index keyed by (object, attribute, value), so
a multi-valued attribute indexes every value; the rows indexed before it are kept."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from alembic import command
from alembic.config import Config
from ecmahost.engine.space.database import MIGRATIONS_DIR
from sqlalchemy import create_engine

OBJECT = (
    "INSERT INTO objects (id, connector, anchor, attributes, state, version, created_at, "
    "updated_at) VALUES ('o1', 'LDAP', 'adele', '{}', 'present', 1, '2026-01-01', '2026-01-01')"
)
VALUE = (
    "INSERT INTO object_values (object_id, attr, connector, value) VALUES ('o1', 'mail', 'LDAP', ?)"
)


def migrate_to(database: Path, revision: str, *, down: bool = False) -> None:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def values(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as db:
        return [v for (v,) in db.execute("SELECT value FROM object_values ORDER BY value")]


def test_multi_valued_migration_keeps_the_index_and_takes_a_row_per_value(tmp_path: Path) -> None:
    database = tmp_path / "space.db"
    migrate_to(database, "0005")
    with closing(sqlite3.connect(database)) as db:
        db.execute(OBJECT)
        db.execute(VALUE, ("b@x.org",))
        db.commit()

    migrate_to(database, "0006_multivalue")
    assert values(database) == ["b@x.org"]
    with closing(sqlite3.connect(database)) as db:
        db.execute(VALUE, ("a@x.org",))  # a second value of the same attribute
        db.commit()
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT object_id FROM object_values "
            "WHERE connector = 'LDAP' AND attr = 'mail' AND value = 'a@x.org'"
        ).fetchall()
    assert "ix_object_values_lookup" in str(plan)
    assert values(database) == ["a@x.org", "b@x.org"]

    migrate_to(database, "0005", down=True)  # one value per attribute again
    assert values(database) == ["a@x.org"]
