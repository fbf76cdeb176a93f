"""The backup module on a real SQLite file in WAL mode."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from ecmahost.engine.space.backup import backup
from ecmahost.engine.space.database import DatabaseUnusableError


def test_commits_still_in_the_wal_are_in_the_copy(tmp_path: Path) -> None:
    database = tmp_path / "ecmahost.db"
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")  # every commit stays in the WAL
        writer.execute("CREATE TABLE t (n INTEGER)")
        writer.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(100)])
        assert (tmp_path / "ecmahost.db-wal").stat().st_size > 0
        writer.execute("BEGIN")
        writer.execute("INSERT INTO t VALUES (1000)")  # not committed: not in the copy
        report = backup(database, tmp_path / "copy.db")
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert stat.S_IMODE(report.target.stat().st_mode) == 0o600
    with sqlite3.connect(report.target) as copy:
        assert copy.execute("SELECT count(*), max(n) FROM t").fetchone() == (100, 99)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert not (tmp_path / "copy.db-wal").exists()


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnusableError, match="nothing to back up"):
        backup(tmp_path / "absent.db", tmp_path / "copy.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
