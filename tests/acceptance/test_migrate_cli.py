"""``ecmahost migrate --check`` on a database left at an older schema, then the start
that migrates it and says so in the log."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
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


def revisions_after(revision: str) -> list[str]:
    """This version's revisions after ``revision``, oldest first."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    steps = script.iterate_revisions(script.get_current_head(), revision)
    return [step.revision for step in reversed(list(steps))]


def revision_of(database: Path) -> str:
    with sqlite3.connect(database) as db:
        return str(db.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_check_tells_what_the_next_start_applies(
    csv_config: Path, server_factory: Callable[..., Server]
) -> None:
    database = old_database(csv_config.parent / "state", "0002")
    checked = ecmahost(csv_config, "migrate", "--check")
    assert checked.returncode == 1, checked.stderr
    pending = revisions_after("0002")
    assert pending[0] == "0003" and len(pending) >= 2
    assert (
        f"at schema 0002 needs {len(pending)} migration(s) {', '.join(pending)}" in checked.stdout
    )
    assert revision_of(database) == "0002"  # a check changes nothing

    server = server_factory(csv_config)
    logged = [json.loads(line) for line in server.stderr_lines if line.startswith("{")]
    [migrated] = [entry for entry in logged if entry.get("action") == "db.migrate"]
    assert (migrated["from"], migrated["applied"]) == ("0002", pending)
    server.stop()

    current = ecmahost(csv_config, "migrate", "--check")
    assert current.returncode == 0 and f"at the newest schema ({pending[-1]})" in current.stdout


def test_migrate_applies_them_now(csv_config: Path) -> None:
    database = old_database(csv_config.parent / "state", "0003")
    applied = ecmahost(csv_config, "migrate")
    assert applied.returncode == 0, applied.stderr
    assert revision_of(database) == revisions_after("0003")[-1]
