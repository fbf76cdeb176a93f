"""An online, consistent copy of the connector space's database.

SQLite's backup API copies the database page by page inside one read transaction,
so the copy is the database as of one commit: every write committed (and so
acknowledged to Entra) before the copy began is in it, none is half in it. In WAL
mode that read transaction blocks no writer, so the host keeps serving meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ecmahost.engine.space.database import DatabaseUnusableError

__all__ = ["BackupReport", "backup"]

_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class BackupReport:
    target: Path
    size_bytes: int
    elapsed_s: float


def backup(database: Path, target: Path) -> BackupReport:
    """Copy ``database`` to ``target`` (mode 0600, written whole or not at all: a
    temporary file in ``target``'s folder is checked, then renamed over it).

    Raises ``DatabaseUnusableError`` when the database is missing or unreadable."""
    if not database.is_file():
        raise DatabaseUnusableError(f"no database at {database}: nothing to back up")
    started = time.monotonic()
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    # Created 0600 before SQLite opens it: the copy holds the same personal data.
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        _copy(database, temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return BackupReport(target, target.stat().st_size, time.monotonic() - started)


def _copy(database: Path, temporary: Path) -> None:
    # mode=rw: a missing file is an error, never a new empty database.
    source = sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=_BUSY_TIMEOUT_S)
    try:
        copy = sqlite3.connect(temporary)
        try:
            source.backup(copy)  # all pages in one step: one snapshot, one read transaction
            # A single self-contained file: no -wal beside it to lose in a copy.
            copy.execute("PRAGMA journal_mode=DELETE")
            _check(copy, temporary)
        finally:
            copy.close()
    except sqlite3.Error as exc:
        raise DatabaseUnusableError(f"cannot back up {database}: {exc}") from exc
    finally:
        source.close()
    with open(temporary, "rb") as stream:
        os.fsync(stream.fileno())


def _check(copy: sqlite3.Connection, path: Path) -> None:
    (verdict,) = copy.execute("PRAGMA quick_check").fetchone()
    if verdict != "ok":
        raise DatabaseUnusableError(f"the copy {path} fails its check: {verdict}")
