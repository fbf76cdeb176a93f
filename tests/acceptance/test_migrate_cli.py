"""``ecmahost migrate --check`` on a database left at an older schema, then the start
that migrates it and says so in the log."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from ecmahost.engine.space.database import MIGRATIONS_DIR
from sqlalchemy import create_engine

from tests.acceptance.conftest import Server, ecmahost


def old_database(state_dir: Path, revision: str) -> Path:
    """A database whose schema stops at ``revision``, as an older ecmahost left it."""
    state_dir.mkdir()
    database = state_dir / "ecmahost.db"
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()
    return database


def revision_of(database: Path) -> str:
    with sqlite3.connect(database) as db:
        return str(db.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_check_tells_what_the_next_start_applies(
    csv_config: Path, server_factory: Callable[..., Server]
) -> None:
    database = old_database(csv_config.parent / "state", "0002")
    checked = ecmahost(csv_config, "migrate", "--check")
    assert checked.returncode == 1, checked.stderr
    assert "at schema 0002 needs 2 migration(s) 0003, 0004" in checked.stdout
    assert revision_of(database) == "0002"  # a check changes nothing

    server = server_factory(csv_config)
    logged = [json.loads(line) for line in server.stderr_lines if line.startswith("{")]
    [migrated] = [entry for entry in logged if entry.get("action") == "db.migrate"]
    assert (migrated["from"], migrated["applied"]) == ("0002", ["0003", "0004"])
    server.stop()

    current = ecmahost(csv_config, "migrate", "--check")
    assert current.returncode == 0 and "at the newest schema (0004)" in current.stdout


def test_migrate_applies_them_now(csv_config: Path) -> None:
    database = old_database(csv_config.parent / "state", "0003")
    applied = ecmahost(csv_config, "migrate")
    assert applied.returncode == 0, applied.stderr
    assert revision_of(database) == "0004"
