"""The real ``ecmahost serve`` with an ``ldap`` connector over a real slapd: Entra's
sequence lands in the directory, a 10,000-entry directory imports page by page, and
an outage delays exports without losing them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecmahost.connectors.ldap.driver import ldap3

from tests.acceptance.conftest import Server, ecmahost, filter_query, wait_until
from tests.conftest import CORE, EXT, TOKEN
from tests.ldap_server import Slapd, slapd_fixture  # noqa: F401 - a fixture

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LOCKED = "000001010000Z"
"""ppolicy's permanent lock: the disabled value of pwdAccountLockedTime."""

ENTRA_MAPPING = {
    "AzureObjectID": "uid",
    "UserName": "cn",
    "DisplayName": "displayName",
    "Surname": "sn",
    "Title": "title",
    "Email": "mail",
    "EmployeeId": "employeeNumber",
}


def ldap_toml(
    slapd: Slapd,
    base_dn: str,
    *,
    name: str = "LDAP",
    anchor: str = "uid",
    rdn_attribute: str = "uid",
    **connector: Any,
) -> str:
    """An ``ldap`` connector's TOML: the token and the bind password by reference
    (``env:``), the Entra attributes mapped onto inetOrgPerson, ``active`` as ppolicy's
    lock. Keyword arguments are connector keys (``export_wait_s = 3``)."""
    keys = "\n".join(f"{key} = {json.dumps(value)}" for key, value in connector.items())
    mapping = "\n".join(f'{key} = "{value}"' for key, value in ENTRA_MAPPING.items())
    return f"""
[connectors.{name}]
type = "ldap"
token = "env:ECMAHOST_TEST_TOKEN"
autosync_minutes = 0
{keys}

[connectors.{name}.deprovision]
disable = "set_attribute"
disable_attribute = "IsActive"

[connectors.{name}.settings]
url = "{slapd.url}"
bind_dn = "{slapd.bind_dn}"
password = "env:ECMAHOST_TEST_LDAP_PASSWORD"
base_dn = "{base_dn}"
anchor = "{anchor}"
rdn_attribute = "{rdn_attribute}"
object_classes = ["inetOrgPerson"]

[connectors.{name}.settings.attributes]
{mapping}

[connectors.{name}.settings.disable]
attribute = "IsActive"
ldap_attribute = "pwdAccountLockedTime"
disabled_value = "{LOCKED}"
"""


def serve(server_factory: Callable[..., Server], config: Path, slapd: Slapd, *args: str) -> Server:
    env = {"ECMAHOST_TEST_TOKEN": TOKEN, "ECMAHOST_TEST_LDAP_PASSWORD": slapd.password}
    return server_factory(config, *args, env=env)


def directory(slapd: Slapd, base: str) -> dict[str, dict[str, list[str]]]:
    """The users under ``base``, by uid, as ldap3 reads them (names lower-cased)."""
    connection = slapd.connection()
    try:
        connection.search(
            base,
            "(objectClass=inetOrgPerson)",
            ldap3.SUBTREE,
            attributes=[ldap3.ALL_ATTRIBUTES, "pwdAccountLockedTime"],
        )
        found = {}
        for item in connection.response:
            values = {
                k.lower(): [v.decode() for v in vs] for k, vs in item["raw_attributes"].items()
            }
            found[values["uid"][0]] = {k: v for k, v in values.items() if v}
        return found
    finally:
        connection.unbind()


def entra_user(i: int, **overrides: str) -> dict[str, str]:
    return {
        "AzureObjectID": str(uuid.UUID(int=0x1D4B_0000_0000_4000_8000_0000_0000_0000 + i)),
        "UserName": f"user{i}@contoso.example",
        "DisplayName": f"User {i}",
        "Surname": f"Surname{i}",
        "Title": "Engineer",
        "Email": f"user{i}@contoso.example",
        "IsActive": "True",
        **overrides,
    }


def create(server: Server, user: dict[str, str]) -> str:
    found = server.request(
        "GET", "/Users" + filter_query(f'AzureObjectID eq "{user["AzureObjectID"]}"'), name="LDAP"
    )
    assert (found.status, found.body["totalResults"]) == (200, 0)
    created = server.request(
        "POST",
        "/Users",
        {"schemas": [CORE], "meta": {"resourceType": "User"}, EXT: user},
        name="LDAP",
    )
    assert created.status == 201, created.body
    return str(created.body["id"])


def patch(server: Server, user_id: str, *operations: dict[str, Any]) -> dict[str, Any]:
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    response = server.request("PATCH", f"/Users/{user_id}", body, name="LDAP")
    assert response.status == 200, response.body
    return dict(response.body)


def test_entra_sequence_lands_in_the_directory(
    slapd: Slapd, write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    base = slapd.new_ou()
    server = serve(server_factory, write_config(ldap_toml(slapd, base)), slapd)

    probe = server.request(
        "GET", "/Users" + filter_query(f'PLACEHOLDER eq "{uuid.uuid4()}"'), name="LDAP"
    )
    assert (probe.status, probe.body["totalResults"]) == (200, 0)
    schemas = server.request("GET", "/Schemas", name="LDAP")
    extension = next(s for s in schemas.body["Resources"] if s["id"] == EXT)
    types = {a["name"]: a["type"] for a in extension["attributes"]}
    assert types == {
        **dict.fromkeys(ENTRA_MAPPING, "string"),
        "-dn-": "string",
        "IsActive": "boolean",
    }

    hostile = 'O\'Brien, "Bob" <b>+#;=\\ Zoë '
    users = [entra_user(i) for i in range(4)] + [
        entra_user(4, UserName=hostile, DisplayName=hostile)
    ]
    ids = {user["AzureObjectID"]: create(server, user) for user in users}
    held = directory(slapd, base)
    assert sorted(held) == sorted(ids)
    for user in users:
        entry = held[user["AzureObjectID"]]
        assert entry["cn"] == [user["UserName"]] and entry["displayname"] == [user["DisplayName"]]
        assert (entry["sn"], entry["title"], entry["mail"]) == (
            [user["Surname"]],
            ["Engineer"],
            [user["Email"]],
        )
        assert "pwdaccountlockedtime" not in entry
    found = server.request(
        "GET", "/Users" + filter_query('UserName eq "USER1@CONTOSO.EXAMPLE"'), name="LDAP"
    )
    assert [r["id"] for r in found.body["Resources"]] == [ids[users[1]["AzureObjectID"]]]

    a, b, c = (user["AzureObjectID"] for user in users[:3])
    patch(server, ids[a], {"op": "Replace", "path": f"{EXT}:Title", "value": "Store Manager"})
    patch(
        server, ids[b], {"op": "replace", "value": {"displayName": "Bjfe", f"{EXT}:Title": "Aklq"}}
    )
    patch(server, ids[c], {"op": "Remove", "path": f"{EXT}:Title"})
    held = directory(slapd, base)
    assert held[a]["title"] == ["Store Manager"]
    assert (held[b]["displayname"], held[b]["title"]) == (["Bjfe"], ["Aklq"])
    assert "title" not in held[c]

    # Disable, then enable: ppolicy's lock is set, then removed.
    assert (
        patch(server, ids[a], {"op": "Replace", "path": "active", "value": "False"})["active"]
        is False
    )
    assert directory(slapd, base)[a]["pwdaccountlockedtime"] == [LOCKED]
    assert (
        patch(server, ids[a], {"op": "replace", "path": "active", "value": True})["active"] is True
    )
    assert "pwdaccountlockedtime" not in directory(slapd, base)[a]

    for user in users:
        deleted = server.request("DELETE", f"/Users/{ids[user['AzureObjectID']]}", name="LDAP")
        assert deleted.status == 204
    assert directory(slapd, base) == {}


def test_full_import_of_ten_thousand_entries_pages_through_them(
    slapd: Slapd, write_config: Callable[..., Path]
) -> None:
    base = slapd.populated_ou(10_000)  # shared and read-only: the connector only imports
    config = write_config(ldap_toml(slapd, base), host='log_level = "debug"')
    env = {"ECMAHOST_TEST_TOKEN": TOKEN, "ECMAHOST_TEST_LDAP_PASSWORD": slapd.password}

    # `ecmahost import` rather than the start-up import of `ecmahost serve`: the same
    # code, without the acceptance fixture's 30 s start-up deadline.
    imported = ecmahost(config, "import", "LDAP", env=env, timeout_s=180)
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert "import of LDAP: 10000 records (added 10000" in imported.stdout
    # The connector held one page of entries at a time: 20 pages of 500.
    log = [json.loads(line) for line in imported.stderr.splitlines() if line.startswith("{")]
    assert [line["entries"] for line in log if line.get("action") == "ldap.import.page"] == [
        500
    ] * 20
    assert slapd.password not in imported.stderr

    cache = ecmahost(config, "cache", "LDAP", env=env, timeout_s=60)
    lines = [json.loads(line) for line in cache.stdout.splitlines()]
    assert len(lines) == 10_000
    last = next(line for line in lines if line["anchor"] == "bulk9999")
    assert last["attributes"] == {
        "AzureObjectID": "bulk9999",
        "UserName": "Bulk User 9999",
        "Surname": "User9999",
        "Email": "bulk9999@example.org",
        "-dn-": f"uid=bulk9999,{base}",
        "IsActive": True,
    }


def test_exports_wait_out_an_outage(
    slapd: Slapd, write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    base = slapd.new_ou()
    toml = ldap_toml(
        slapd, base, export_wait_s=5, retry_base_s=0.1, retry_cap_s=0.5, retry_max_attempts=1000
    )
    server = serve(server_factory, write_config(toml), slapd)
    first, second = entra_user(10), entra_user(11)
    first_id = create(server, first)

    with slapd.stopped():
        refused = server.request("POST", "/Users", {EXT: second}, name="LDAP")
        assert refused.status == 503 and "retry-after" in refused.headers, refused.body
        assert "cannot be reached" in refused.body["detail"]
        changed = server.request(
            "PATCH",
            f"/Users/{first_id}",
            {"Operations": [{"op": "Replace", "path": f"{EXT}:Title", "value": "Retried"}]},
            name="LDAP",
        )
        assert changed.status == 503, changed.body

    # Delivered once the server is back, without another request.
    wait_until(lambda: second["AzureObjectID"] in directory(slapd, base), timeout_s=15)
    wait_until(lambda: directory(slapd, base)[first["AzureObjectID"]].get("title") == ["Retried"])
    assert create(server, entra_user(12))  # and the connector works as before
