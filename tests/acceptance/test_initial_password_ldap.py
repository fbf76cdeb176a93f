"""Entra's initial password over the real ``ecmahost serve`` and slapd: it reaches
``userPassword`` (a bind with it succeeds), waits in the queue only sealed while the
directory is down, and is nowhere afterwards: not in an answer, the log, the export
history, the state folder, nor the queue."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from ecmahost.connectors.ldap.driver import ldap3

from tests.acceptance.conftest import Server, filter_query, wait_until
from tests.acceptance.password_trail import (
    ADMIN_TOKEN,
    Answers,
    assert_nowhere,
    history,
    queued_payloads,
)
from tests.acceptance.test_ldap_e2e import PATCH_OP, entra_user, ldap_toml
from tests.conftest import CORE, EXT, TOKEN
from tests.ldap_server import Slapd, slapd_fixture  # noqa: F401 - a fixture


def password_toml(slapd: Slapd, base: str) -> str:
    toml = ldap_toml(slapd, base, export_wait_s=3)
    toml = toml.replace(
        'object_classes = ["inetOrgPerson"]',
        'object_classes = ["inetOrgPerson"]\nexport_only = ["export_password"]',
    )
    return toml.replace(
        "[connectors.LDAP.settings.attributes]\n",
        '[connectors.LDAP.settings.attributes]\nexport_password = "userPassword"\n',
    )


def binds(slapd: Slapd, dn: str, password: str) -> bool:
    connection = ldap3.Connection(
        ldap3.Server(slapd.url, connect_timeout=5), dn, password, receive_timeout=10
    )
    try:
        return bool(connection.bind())
    finally:
        connection.unbind()


def _dn(slapd: Slapd, base: str, uid: str) -> str:
    connection = slapd.connection()
    try:
        connection.search(base, f"(uid={uid})", attributes=["uid"])
        return str(connection.response[0]["dn"])
    finally:
        connection.unbind()


def test_initial_password_reaches_ldap_and_is_kept_nowhere(
    slapd: Slapd,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    config_dir: Path,
) -> None:
    base = slapd.new_ou()
    host = 'log_level = "debug"\nadmin_token = "env:ADMIN_TOKEN"'
    config = write_config(password_toml(slapd, base), host)
    env = {
        "ECMAHOST_TEST_TOKEN": TOKEN,
        "ECMAHOST_TEST_LDAP_PASSWORD": slapd.password,
        "ADMIN_TOKEN": ADMIN_TOKEN,
    }
    server = server_factory(config, env=env)
    answers = Answers(server, "LDAP")
    state_dir = config_dir / "state"
    first, second, third = (f"Pw-{secrets.token_urlsafe(12)}" for _ in range(3))

    # Entra's create: the core password beside the extension's attributes.
    user = entra_user(1)
    body = {"schemas": [CORE], "password": first, EXT: user}
    created = answers.call("POST", "/Users", body)
    assert created.status == 201, created.body
    user_id = created.body["id"]
    dn = _dn(slapd, base, user["AzureObjectID"])
    assert binds(slapd, dn, first)

    # A reset through PATCH, as ECMA2Host's attribute name, with another change.
    operations = [
        {"op": "replace", "path": f"{EXT}:export_password", "value": second},
        {"op": "replace", "path": f"{EXT}:Title", "value": "Manager"},
    ]
    patched = answers.call(
        "PATCH", f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": operations}
    )
    assert patched.status == 200, patched.body
    assert binds(slapd, dn, second) and not binds(slapd, dn, first)

    # The directory down: the reset waits in the queue, sealed, and no plain copy is kept.
    with slapd.stopped():
        reset = [{"op": "replace", "path": "password", "value": third}]
        waiting = answers.call(
            "PATCH", f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": reset}
        )
        assert waiting.status == 503, waiting.body
        sealed = [
            p["export_password"] for p in queued_payloads(state_dir) if p.get("export_password")
        ]
        assert sealed and all(isinstance(v, dict) and "$sealed" in v for v in sealed), sealed
        assert third.encode() not in (state_dir / "ecmahost.db").read_bytes()
    wait_until(lambda: binds(slapd, dn, third), 30)

    for path in (f"/Users/{user_id}", "/Users", "/Users" + filter_query('Title eq "Manager"')):
        assert answers.call("GET", path).status == 200
    assert answers.admin("/admin/exports").status == 200
    server.stop()
    log = "".join(server.stderr_lines)
    assert "export done" in log
    events = history(config, env)
    for password in (first, second, third):
        assert_nowhere(password, answers, state_dir, events, log)
