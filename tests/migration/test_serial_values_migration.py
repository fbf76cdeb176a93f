"""Revision 0008_serial_values: the value index keyed by the object's serial; the rows
indexed before it are kept, and an object inserted without a serial gets the next."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from ecmahost.engine.space.models import ObjectRow, utcnow
from sqlalchemy import create_engine, insert

from tests.migration.test_multi_valued_migration import migrate_to

OBJECT = (
    "INSERT INTO objects (id, connector, anchor, attributes, state, version, created_at, "
    "updated_at) VALUES (?, 'LDAP', ?, '{}', 'present', 1, '2026-01-01', '2026-01-01')"
)


def _insert_through_the_model(database: Path, ids: list[str]) -> None:
    """Objects inserted as SCIM creates insert them: the model's statement, no serial."""
    engine = create_engine(f"sqlite:///{database}")
    rows = [
        {
            "id": object_id,
            "connector": "LDAP",
            "anchor": object_id,
            "attributes": {},
            "state": "present",
            "version": 1,
            "created_at": utcnow(),
            "updated_at": utcnow(),
        }
        for object_id in ids
    ]
    try:
        with engine.begin() as connection:
            connection.execute(insert(ObjectRow.__table__), rows)
    finally:
        engine.dispose()


def _indexed(database: Path) -> list[tuple[str, str]]:
    """(object id, value) of every index row, joined the way the new key is."""
    with closing(sqlite3.connect(database)) as db:
        return db.execute(
            "SELECT o.id, v.value FROM object_values v JOIN objects o "
            "ON o.serial = v.object_serial ORDER BY v.value"
        ).fetchall()


def test_serial_migration_keeps_the_index_and_numbers_new_objects(tmp_path: Path) -> None:
    database = tmp_path / "space.db"
    migrate_to(database, "0006_multivalue")
    with closing(sqlite3.connect(database)) as db:
        for object_id in ("o1", "o2"):
            db.execute(OBJECT, (object_id, object_id))
            db.execute(
                "INSERT INTO object_values (object_id, attr, connector, value) "
                "VALUES (?, 'mail', 'LDAP', ?)",
                (object_id, f"{object_id}@x.org"),
            )
        db.commit()

    migrate_to(database, "0008_serial_values")

    assert _indexed(database) == [("o1", "o1@x.org"), ("o2", "o2@x.org")]
    _insert_through_the_model(database, ["o3"])
    _insert_through_the_model(database, ["o4", "o5"])  # one executemany
    with closing(sqlite3.connect(database)) as db:
        serials = db.execute("SELECT id, serial FROM objects ORDER BY serial").fetchall()
    assert serials == [("o1", 1), ("o2", 2), ("o3", 3), ("o4", 4), ("o5", 5)]

    migrate_to(database, "0006_multivalue", down=True)
    with closing(sqlite3.connect(database)) as db:
        kept = db.execute("SELECT object_id, value FROM object_values ORDER BY value").fetchall()
    assert kept == [("o1", "o1@x.org"), ("o2", "o2@x.org")]
