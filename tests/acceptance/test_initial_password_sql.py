"""Entra's initial password over the real ``ecmahost serve`` and PostgreSQL: it lands
in an export-only column, a refused row's error (whose detail line quotes the row,
password and all) reaches Entra without it, and it is nowhere else afterwards: not in
an answer, the log, the export history, the state folder, nor the queue."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from tests.acceptance.conftest import Server, ecmahost
from tests.acceptance.password_trail import (
    ADMIN_TOKEN,
    Answers,
    assert_nowhere,
    history,
    queued_payloads,
)
from tests.acceptance.test_sql_postgres_e2e import TOKEN_VARIABLE, URL_VARIABLE, sql_connector_toml
from tests.conftest import CORE, EXT, TOKEN
from tests.connectors.sql.postgres import PostgresServer, postgres_fixture

__all__ = ["postgres_fixture"]

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USERS = (
    'CREATE TABLE users ("AzureObjectID" text PRIMARY KEY, "DisplayName" text, '
    '"Title" text CHECK ("Title" <> \'refused\'), "IsActive" boolean, "InitialPassword" text)'
)


def _run(dsn: str, work: Callable[[asyncpg.Connection], Any]) -> Any:
    async def session() -> Any:
        db = await asyncpg.connect(dsn)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(session())


def test_initial_password_reaches_sql_and_is_kept_nowhere(
    postgres: PostgresServer,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    config_dir: Path,
) -> None:
    name = f"pw_{secrets.token_hex(4)}"
    url = postgres.create_database(name)
    dsn = postgres.dsn(name)
    _run(dsn, lambda db: db.execute(USERS))
    connector = sql_connector_toml(export_wait_s=3).replace(
        'anchor = "AzureObjectID"', 'anchor = "AzureObjectID"\nexport_only = ["export_password"]'
    )
    connector += (
        "[connectors.SQL.settings.attributes]\n"
        'AzureObjectID = "AzureObjectID"\nDisplayName = "DisplayName"\nTitle = "Title"\n'
        'IsActive = "IsActive"\nexport_password = "InitialPassword"\n'
    )
    host = 'log_level = "debug"\nadmin_token = "env:ADMIN_TOKEN"'
    config = write_config(connector, host)
    env = {URL_VARIABLE: url, TOKEN_VARIABLE: TOKEN, "ADMIN_TOKEN": ADMIN_TOKEN}
    server = server_factory(config, env=env)
    answers = Answers(server, "SQL")
    state_dir = config_dir / "state"
    first, refused, reset = (f"Pw-{secrets.token_urlsafe(12)}" for _ in range(3))

    def column(anchor: str) -> Any:
        return _run(
            dsn,
            lambda db: db.fetchval(
                'SELECT "InitialPassword" FROM users WHERE "AzureObjectID" = $1', anchor
            ),
        )

    anchor = str(uuid.uuid4())
    user = {"AzureObjectID": anchor, "DisplayName": "Ann", "Title": "Engineer"}
    created = answers.call("POST", "/Users", {"schemas": [CORE], "password": first, EXT: user})
    assert created.status == 201, created.body
    assert column(anchor) == first
    assert "export_password" not in created.body[EXT]

    # PostgreSQL's error quotes the failing row, the password in it: not to Entra.
    other = {"AzureObjectID": str(uuid.uuid4()), "DisplayName": "Bob", "Title": "refused"}
    body = {"schemas": [CORE], "password": refused, EXT: other}
    failed = answers.call("POST", "/Users", body)
    assert failed.status == 400 and "Failing row" in str(failed.body), failed.body
    assert "***" in str(failed.body), failed.body
    # The failed event keeps its password sealed, for a replay.
    kept = [
        p for p in queued_payloads(state_dir) if p.get("AzureObjectID") == other["AzureObjectID"]
    ]
    assert kept and "$sealed" in kept[-1]["export_password"], kept

    operations = [{"op": "replace", "path": "password", "value": reset}]
    patched = answers.call(
        "PATCH", f"/Users/{created.body['id']}", {"schemas": [PATCH_OP], "Operations": operations}
    )
    assert patched.status == 200, patched.body
    assert column(anchor) == reset
    assert answers.call("GET", "/Users").status == 200
    assert answers.admin("/admin/exports").status == 200

    server.stop()
    # Given up on, the failed event loses its sealed password too.
    listed = ecmahost(config, "exports", "list", "--failed", "--json", env=env)
    (failed_event,) = (json.loads(line)["id"] for line in listed.stdout.splitlines())
    discarded = ecmahost(config, "exports", "discard", str(failed_event), env=env)
    assert discarded.returncode == 0, discarded.stderr
    log = "".join(server.stderr_lines)
    assert "Failing row" in log
    events = history(config, env)
    for password in (first, refused, reset):
        assert_nowhere(password, answers, state_dir, events, log)
