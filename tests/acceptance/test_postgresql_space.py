"""A host whose connector space is on PostgreSQL: ``ecmahost migrate`` makes the
schema, hosts refuse any schema but their own, and the space lives in the database,
not in the state folder."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecmahost.engine.space.database import DATABASE_FILE_NAME

from tests.acceptance.conftest import Server, ecmahost, filter_query, read_csv, wait_until
from tests.acceptance.postgresql_space import (
    DATABASE_VARIABLE,
    postgresql_csv_config,
    query_database,
)
from tests.conftest import CORE, EXT
from tests.connectors.sql.postgres import PostgresServer, postgres_fixture, start_server

__all__ = ["postgres_fixture"]  # the session's PostgreSQL server, as fixture `postgres`


def _serve_fails(config: Path, env: dict[str, str]) -> str:
    served = ecmahost(config, "serve", "--listen", "127.0.0.1:0", env=env)
    assert served.returncode != 0
    assert "Traceback" not in served.stderr
    return served.stderr


def test_hosts_start_on_postgresql_only_once_migrate_made_the_schema(
    write_config: Callable[..., Path],
    postgres: PostgresServer,
    server_factory: Callable[..., Server],
    config_dir: Path,
) -> None:
    config, env = postgresql_csv_config(write_config, postgres, migrate=False)

    refused = _serve_fails(config, env)
    assert "is at schema (empty)" in refused and "run `ecmahost migrate`" in refused
    checked = ecmahost(config, "migrate", "--check", env=env)
    assert checked.returncode == 1 and "with every host stopped" in checked.stdout
    migrated = ecmahost(config, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr

    server = server_factory(config, env=env)
    anchor = str(uuid.uuid4())
    user = {"AzureObjectID": anchor, "UserName": "pg@contoso.example", "IsActive": "True"}
    created = server.request("POST", "/Users", {"schemas": [CORE], EXT: user})
    assert created.status == 201, created.body
    assert read_csv(config_dir / "state" / "InputFile.txt")[anchor]["UserName"] == user["UserName"]

    rows = query_database(
        env[DATABASE_VARIABLE], "SELECT anchor FROM objects WHERE connector = 'CSV'"
    )
    assert anchor in {row["anchor"] for row in rows}
    assert not (config_dir / "state" / DATABASE_FILE_NAME).exists()
    server.restart()  # the space is the database's: a new process finds the user
    found = server.request("GET", "/Users" + filter_query(f'UserName eq "{user["UserName"]}"'))
    assert [r["id"] for r in found.body["Resources"]] == [created.body["id"]]
    server.stop()

    password = postgres.password
    output = "".join(server.stderr_lines) + refused + checked.stdout + migrated.stdout
    assert password not in output


def test_a_host_refuses_a_schema_newer_than_its_own(
    write_config: Callable[..., Path], postgres: PostgresServer
) -> None:
    config, env = postgresql_csv_config(write_config, postgres)
    query_database(
        env[DATABASE_VARIABLE], "UPDATE alembic_version SET version_num = '9999_from_the_future'"
    )

    refused = _serve_fails(config, env)
    assert "written by a newer ecmahost (schema revision 9999_from_the_future)" in refused
    checked = ecmahost(config, "migrate", env=env)
    assert checked.returncode != 0 and "written by a newer ecmahost" in checked.stderr


def test_backup_points_to_postgresqls_own_tools(
    write_config: Callable[..., Path], postgres: PostgresServer, tmp_path: Path
) -> None:
    config, env = postgresql_csv_config(write_config, postgres)
    refused = ecmahost(config, "backup", str(tmp_path / "copy.db"), env=env)
    assert refused.returncode != 0 and "pg_dump" in refused.stderr


def test_while_postgresql_is_down_requests_are_answered_503_and_nothing_is_lost(
    write_config: Callable[..., Path],
    postgres: PostgresServer,
    server_factory: Callable[..., Server],
    config_dir: Path,
) -> None:
    """``postgres`` only makes the test skip (or fail in CI) where PostgreSQL is
    missing: this test stops and starts a server of its own."""
    own = start_server()
    try:
        config, env = postgresql_csv_config(write_config, own)
        server = server_factory(config, env=env)
        before = _create(server, "before@contoso.example")
        assert before.status == 201, before.body

        own.stop()
        match = server.request(
            "GET", "/Users" + filter_query('UserName eq "before@contoso.example"')
        )
        refused = _create(server, "during@contoso.example")
        for answer in (match, refused):
            assert answer.status == 503 and answer.headers["retry-after"] == "30", answer.body
            assert "cannot be reached" in answer.body["detail"]

        own.start()  # the host reconnects by itself: the next attempts go through
        wait_until(lambda: _create(server, "after@contoso.example").status == 201)
        found = server.request(
            "GET", "/Users" + filter_query('UserName eq "before@contoso.example"')
        )
        assert [r["id"] for r in found.body["Resources"]] == [before.body["id"]]
        names = {
            row["UserName"] for row in read_csv(config_dir / "state" / "InputFile.txt").values()
        }
        assert {"before@contoso.example", "after@contoso.example"} <= names
        assert "during@contoso.example" not in names  # refused, so not acknowledged
        assert "Traceback" not in "".join(server.stderr_lines)
        server.stop()
    finally:
        own.destroy()


def _create(server: Server, user_name: str) -> Any:
    user = {"AzureObjectID": str(uuid.uuid4()), "UserName": user_name}
    return server.request("POST", "/Users", {"schemas": [CORE], EXT: user})


def _by_name(user_name: str) -> str:
    return filter_query(f'UserName eq "{user_name}"')
