"""One host holding every kind of secret (admin token, connector tokens, a PostgreSQL
password, LDAP bind passwords, a script's secret parameter and secret environment
value), driven down every path that logs or answers an error: wrong tokens, refused
exports, failing scripts, a refused LDAP bind and SQL login, a failed import, the
admin API and health details. No secret appears, in any form, in any log line or
response body.

Not searched here: the 400 answers aiohttp's HTTP parser writes itself (an over-long
or malformed header, a bad request line), which quote the refused line; they are the
server limits' to replace, and tested there. Their log lines are searched.
"""

from __future__ import annotations

import json
import secrets
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.acceptance.conftest import Server, ecmahost, wait_until
from tests.acceptance.test_ldap_e2e import entra_user, ldap_toml
from tests.conftest import CORE, EXT
from tests.connectors.sql.postgres import PostgresServer, postgres_fixture
from tests.ldap_server import Slapd, slapd_fixture  # noqa: F401 - a fixture

__all__ = ["postgres_fixture"]

LEAKY = Path(__file__).resolve().parents[1] / "fixtures" / "scripts" / "leaky.py"
USERS = (
    'CREATE TABLE users ("AzureObjectID" text PRIMARY KEY, "DisplayName" text, '
    '"Title" text CHECK ("Title" <> \'refused\'))'
)


def _secret(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(12)}"


class Transcript:
    """Every answer the test received, as text."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.texts: list[str] = []

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        response = self.server.request(method, path, body, **kw)
        for ascii_only in (True, False):
            self.texts.append(json.dumps(response.body, ensure_ascii=ascii_only))
        self.texts.append(json.dumps(response.headers))
        return response

    def root(self, path: str, token: str | None) -> Any:
        base = self.server.url("SQL").split("/ecma2host_")[0]
        return self.call("GET", "", base=base + path, token=token)


def _toml(slapd: Slapd, ldap_base: str) -> str:
    ldap = ldap_toml(slapd, ldap_base, export_wait_s=3).replace(
        "env:ECMAHOST_TEST_TOKEN", "env:T_LDAP"
    )
    bad_ldap = (
        ldap_toml(slapd, ldap_base, name="LDAPBAD")
        .replace("env:ECMAHOST_TEST_TOKEN", "env:T_LDAPBAD")
        .replace("env:ECMAHOST_TEST_LDAP_PASSWORD", "env:WRONG_LDAP_PASSWORD")
    )
    return f"""
{ldap}
{bad_ldap}
[connectors.SQL]
type = "sql"
token = "env:T_SQL"
export_wait_s = 3
[connectors.SQL.settings]
url = "env:SQL_URL"
table = "users"
anchor = "AzureObjectID"

[connectors.SQLBAD]
type = "sql"
token = "env:T_SQLBAD"
[connectors.SQLBAD.settings]
url = "env:WRONG_SQL_URL"
table = "users"
anchor = "AzureObjectID"

[connectors.Script]
type = "script"
token = "env:T_SCRIPT"
export_wait_s = 3
retry_base_s = 60
[connectors.Script.settings]
scripts = {{ schema = "{LEAKY}", import = "{LEAKY}", export = "{LEAKY}" }}
[connectors.Script.settings.secret_parameters]
Password = "env:SCRIPT_PASSWORD"
[connectors.Script.settings.environment]
LEAKY_SECRET = "env:SCRIPT_ENV_SECRET"
"""


def _user(body: dict[str, str]) -> dict[str, Any]:
    return {"schemas": [CORE], EXT: body}


def test_no_secret_in_any_log_line_or_answer(
    slapd: Slapd,
    postgres: PostgresServer,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    config_dir: Path,
) -> None:
    database = f"secrets_{secrets.token_hex(4)}"
    sql_url = postgres.create_database(database)
    _create_table(postgres, database)
    wrong_pg = _secret("wrong-pg")
    tokens = {name: _secret(f"tok-{name}") for name in ("LDAP", "LDAPBAD", "SQL", "SQLBAD")}
    tokens["Script"] = _secret("tok-script")
    env = {
        **{f"T_{name.upper()}": token for name, token in tokens.items()},
        "ADMIN_TOKEN": _secret("admin"),
        "ECMAHOST_TEST_LDAP_PASSWORD": slapd.password,
        "WRONG_LDAP_PASSWORD": _secret("wrong-ldap"),
        "SQL_URL": sql_url,
        "WRONG_SQL_URL": sql_url.replace(postgres.password, wrong_pg),
        "SCRIPT_PASSWORD": _secret('script "pass" \\ zoë'),
        "SCRIPT_ENV_SECRET": _secret("script-env"),
    }
    shown = [
        *tokens.values(),
        env["ADMIN_TOKEN"],
        slapd.password,
        env["WRONG_LDAP_PASSWORD"],
        postgres.password,
        wrong_pg,
        env["SCRIPT_PASSWORD"],
        env["SCRIPT_ENV_SECRET"],
    ]
    ldap_base = slapd.new_ou()
    host = 'log_level = "debug"\nadmin_token = "env:ADMIN_TOKEN"'
    config = write_config(_toml(slapd, ldap_base), host)
    server = server_factory(config, env=env, wait_ready=False)
    transcript = Transcript(server)
    for name in ("LDAP", "SQL", "Script"):
        wait_until(
            lambda n=name: (
                transcript.call("GET", "/ServiceProviderConfig", name=n, token=tokens[n]).status
                != 503
            ),
            30,
        )

    _wrong_tokens(transcript, tokens, env["ADMIN_TOKEN"])
    _failed_exports(transcript, tokens, ldap_base)
    _script_failures(transcript, tokens["Script"], config_dir, env["ADMIN_TOKEN"])
    _unreachable_targets(transcript, tokens, env["ADMIN_TOKEN"])
    _malformed_requests(transcript, env["ADMIN_TOKEN"])
    cli = ecmahost(config, "exports", "list", "--failed", env=env)
    assert "refused" in cli.stdout or "check" in cli.stdout, cli.stdout + cli.stderr
    server.stop()

    log = "".join(server.stderr_lines)
    assert "leaking ***" in log  # the script printed its secrets: they were replaced
    everything = "\n".join([log, *transcript.texts, cli.stdout, cli.stderr])
    for secret in shown:
        quoted = (json.dumps(secret, ensure_ascii=a)[1:-1] for a in (True, False))
        for form in {secret, repr(secret)[1:-1], *quoted}:
            assert form not in everything, f"a secret ({secret[:4]}…) was shown"


def _create_table(postgres: PostgresServer, database: str) -> None:
    import asyncio

    import asyncpg

    async def create() -> None:
        db = await asyncpg.connect(postgres.dsn(database))
        try:
            await db.execute(USERS)
        finally:
            await db.close()

    asyncio.run(create())


def _wrong_tokens(transcript: Transcript, tokens: dict[str, str], admin: str) -> None:
    call = transcript.call
    assert call("GET", "/Users", name="SQL", token=tokens["Script"]).status == 401
    assert call("GET", "/Users", name="Script", token="not-" + tokens["Script"]).status == 401
    assert call("GET", "/Users", name="LDAP", token=admin).status == 401
    assert call("GET", "/Users", name="LDAP", token=None).status == 401
    assert transcript.root("/admin/exports", tokens["SQL"]).status == 401
    assert transcript.root("/admin/exports", admin + "x").status == 401
    assert transcript.root("/health?detail=1", tokens["LDAP"]).status == 401


def _failed_exports(transcript: Transcript, tokens: dict[str, str], ldap_base: str) -> None:
    call = transcript.call
    refused = {"AzureObjectID": str(uuid.uuid4()), "DisplayName": "R", "Title": "refused"}
    answer = call("POST", "/Users", _user(refused), name="SQL", token=tokens["SQL"])
    assert answer.status == 400 and "check" in json.dumps(answer.body), answer.body
    outside = entra_user(1, **{"-dn-": f"uid=evil1+{ldap_base}"})
    answer = call("POST", "/Users", _user(outside), name="LDAP", token=tokens["LDAP"])
    assert answer.status == 400 and "multi-valued" in json.dumps(answer.body), answer.body
    first = entra_user(2, AzureObjectID="CaseUser")
    assert call("POST", "/Users", _user(first), name="LDAP", token=tokens["LDAP"]).status == 201
    clash = entra_user(3, AzureObjectID="CASEUSER")
    assert call("POST", "/Users", _user(clash), name="LDAP", token=tokens["LDAP"]).status == 409


def _script_failures(transcript: Transcript, token: str, config_dir: Path, admin: str) -> None:
    call = transcript.call
    for mode, status in (("message", 400), ("garbage", 400), ("crash", 503)):
        user = {"AzureObjectID": f"script-{mode}", "DisplayName": mode}
        answer = call("POST", "/Users", _user(user), name="Script", token=token)
        assert answer.status == status, (mode, answer.body)
    assert "***" in json.dumps(transcript.root("/admin/exports", admin).body)
    (config_dir / "fail-import").touch()
    base = transcript.server.url("Script").split("/ecma2host_")[0]
    started = call("POST", "", base=base + "/admin/imports/Script", token=admin)
    assert started.status == 202
    wait_until(lambda: "import script" in "".join(transcript.server.stderr_lines), 20)


def _unreachable_targets(transcript: Transcript, tokens: dict[str, str], admin: str) -> None:
    for name in ("LDAPBAD", "SQLBAD"):
        answer = transcript.call("GET", "/Users", name=name, token=tokens[name])
        assert answer.status == 503, answer.body
    detail = wait_until(
        lambda: all(
            transcript.root("/health?detail=1", admin).body["connectors"][n]["reason"]
            for n in ("LDAPBAD", "SQLBAD")
        ),
        20,
    )
    assert detail
    transcript.root("/health?detail=1", admin)


def _malformed_requests(transcript: Transcript, admin: str) -> None:
    """Requests aiohttp's parser refuses, the admin token in their headers: the log
    must not show it. Their answers are not searched: aiohttp writes them itself and
    quotes the refused line, like the over-long header's (see the module docstring)."""
    address = urlsplit(transcript.server.url("SQL"))
    heads = [
        f"GET /admin/exports HTTP/1.1\r\nAuthorization: Bearer {admin}\r\nBad Header: x\r\n",
        f"GET /admin/exports HTTP/1.1\r\nAuthorization: Bearer {admin}\x01\r\n",
        f"GET /admin/exports HTTP/1.1\r\nX-{admin}\x7f: y\r\n",
        f"GET /admin/{admin} HTTP/9.9\r\n",
        f"GET /admin/exports HTTP/1.1\r\nContent-Length: {admin}\r\n",
    ]
    for head in heads:
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            sock.sendall(head.encode("latin-1") + b"Host: x\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 400"), answer
