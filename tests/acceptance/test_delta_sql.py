"""``ecmahost import --delta`` against real SQLite, PostgreSQL and MariaDB tables of
5,000 rows: after 1,000 changes made directly in the table (updates, inserts, soft
deletes), the delta reads exactly those rows, much faster than a full import, and the
view matches the table; a new process (a restart) keeps the watermark; a table
restored from an older backup makes the delta fall back to a full import."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from ecmahost.engine.space.database import database_file

from tests.acceptance.conftest import ecmahost
from tests.conftest import TOKEN
from tests.connectors.sql.mariadb import mariadb_fixture
from tests.connectors.sql.postgres import postgres_fixture
from tests.connectors.sql.sql_support import Backend, backend_fixture

__all__ = ["backend_fixture", "mariadb_fixture", "postgres_fixture"]

ROWS = 5_000
URL_VARIABLE = "ECMAHOST_TEST_DELTA_URL"
_TIME = {"sqlite": "TIMESTAMP", "postgresql": "TIMESTAMP(6)", "mariadb": "DATETIME(6)"}
LOADED, CHANGED, LATER = "'2026-01-01 10:00:00'", "'2026-01-01 11:00:00'", "'2026-01-01 12:00:00'"


def delta_toml() -> str:
    return f"""
[connectors.SQL]
type = "sql"
token = "{TOKEN}"
autosync_minutes = 0

[connectors.SQL.settings]
url = "env:{URL_VARIABLE}"
table = "people"
anchor = "id"
attributes = {{ id = "id", name = "name" }}
page_size = 1000

[connectors.SQL.settings.delta]
watermark_column = "changed"
soft_delete_column = "deleted"
"""


def run(backend: Backend, script: str) -> None:
    asyncio.run(backend.run(script))


def live(backend: Backend) -> dict[str, str]:
    rows = asyncio.run(backend.rows('SELECT "id", "name", "deleted" FROM "people"'))
    return {r["id"]: r["name"] for r in rows if not r["deleted"]}


def ids(numbers: range) -> str:
    return ", ".join(f"'p{i:05d}'" for i in numbers)


def last_run(config: Path) -> dict[str, Any]:
    with closing(sqlite3.connect(database_file(config.parent / "state"))) as db:
        kind, status, counts, error, started, finished = db.execute(
            "SELECT kind, status, counts, error, started_at, finished_at FROM runs "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
    seconds = _seconds(finished) - _seconds(started)
    return {
        "kind": kind,
        "status": status,
        "counts": json.loads(counts),
        "error": error,
        "seconds": seconds,
    }


def _seconds(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def runs(config: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(database_file(config.parent / "state"))) as db:
        return list(db.execute("SELECT kind, status FROM runs ORDER BY id"))


def view(config: Path) -> dict[str, str]:
    done = ecmahost(config, "cache", "SQL")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return {line["anchor"]: line["attributes"]["name"] for line in lines}


def test_delta_reads_only_the_changed_rows(
    backend: Backend, write_config: Callable[[str], Path]
) -> None:
    config = write_config(delta_toml())
    env = {URL_VARIABLE: backend.url}
    values = ", ".join(f"('p{i:05d}', 'Person {i}', {LOADED}, false)" for i in range(ROWS))
    run(
        backend,
        f'CREATE TABLE "people" ("id" VARCHAR(64) PRIMARY KEY, "name" TEXT, '
        f'"changed" {_TIME[backend.name]}, "deleted" BOOLEAN NOT NULL DEFAULT false);'
        f'INSERT INTO "people" VALUES {values}',
    )
    done = ecmahost(config, "import", "SQL", env=env)
    assert done.returncode == 0, done.stderr
    full = last_run(config)
    assert (full["kind"], full["counts"]["seen"]) == ("import", ROWS)

    # 1,000 changes made directly in the table: 600 updates, 200 inserts, 200 soft deletes.
    inserted = ", ".join(f"('n{i:05d}', 'New {i}', {CHANGED}, false)" for i in range(200))
    run(
        backend,
        f'UPDATE "people" SET "name" = \'Changed\', "changed" = {CHANGED} '
        f'WHERE "id" IN ({ids(range(0, 600))});'
        f'INSERT INTO "people" VALUES {inserted};'
        f'UPDATE "people" SET "deleted" = true, "changed" = {CHANGED} '
        f'WHERE "id" IN ({ids(range(600, 800))})',
    )
    done = ecmahost(config, "import", "SQL", "--delta", env=env)
    assert done.returncode == 0, done.stderr
    assert "read 1000" in done.stdout  # what the operator is shown
    delta = last_run(config)
    print(
        f"\n{backend.name}: full import of {ROWS} rows {full['seconds']:.3f} s; "
        f"delta of {delta['counts']['read']} changed rows {delta['seconds']:.3f} s"
    )
    assert (delta["kind"], delta["status"]) == ("delta", "ok")
    assert delta["counts"]["read"] == 1_000  # only the changed rows were read
    assert (delta["counts"]["updated"], delta["counts"]["added"]) == (600, 200)
    assert delta["counts"]["removed"] == 200
    assert view(config) == live(backend)

    # A new process: the watermark came from the space, so only the newer rows are read.
    run(
        backend,
        f'UPDATE "people" SET "name" = \'Later\', "changed" = {LATER} '
        f'WHERE "id" IN ({ids(range(1000, 1010))})',
    )
    assert ecmahost(config, "import", "SQL", "--delta", env=env).returncode == 0
    assert last_run(config)["counts"]["read"] == 10
    assert view(config) == live(backend)

    # The table restored from an older backup: its newest row predates the watermark.
    run(backend, f'UPDATE "people" SET "changed" = {LOADED}, "name" = \'Restored\'')
    done = ecmahost(config, "import", "SQL", "--delta", env=env)
    assert done.returncode == 0, done.stderr
    assert runs(config)[-2:] == [("delta", "fell_back"), ("import", "ok")]
    assert view(config) == live(backend)
