"""Anchors the directory assigns, over the real ``ecmahost serve`` and a real slapd:
the DN itself (``anchor = "-dn-"``) and entryUUID. Entra's whole request sequence
works in both export modes, the SCIM id is kept through the bind and the move, and
an import afterwards finds the same object rather than a duplicate.

objectClass is not sent in these requests (the connector writes it from
``object_classes``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ecmahost.connectors.ldap.driver import ldap3

from tests.acceptance.conftest import Server, filter_query, wait_until
from tests.acceptance.test_ldap_e2e import LOCKED, PATCH_OP, ldap_toml, serve
from tests.conftest import CORE, EXT
from tests.ldap_server import Slapd, slapd_fixture  # noqa: F401 - a fixture


def entries(slapd: Slapd, base: str) -> dict[str, dict[str, Any]]:
    """The users under ``base`` by uid: their DN, entryUUID and values."""
    connection = slapd.connection()
    try:
        connection.search(
            base,
            "(objectClass=inetOrgPerson)",
            ldap3.SUBTREE,
            attributes=[ldap3.ALL_ATTRIBUTES, "entryUUID", "pwdAccountLockedTime"],
        )
        found = {}
        for item in connection.response:
            values = {
                k.lower(): [v.decode() for v in vs] for k, vs in item["raw_attributes"].items()
            }
            found[values["uid"][0]] = {"dn": item["dn"], **values}
        return found
    finally:
        connection.unbind()


def user(number: int) -> dict[str, str]:
    return {
        "AzureObjectID": str(uuid.uuid4()),
        "UserName": f"user{number}",
        "DisplayName": f"User {number}",
        "Surname": f"Surname{number}",
        "Email": f"user{number}@contoso.example",
        "IsActive": "True",
    }


def request(server: Server, method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = server.request(method, path, body, name="LDAP")
    assert response.status in (200, 201), (response.status, response.body)
    return dict(response.body)


def match(server: Server, uid: str) -> list[str]:
    found = request(server, "GET", "/Users" + filter_query(f'AzureObjectID eq "{uid}"'))
    return [r["id"] for r in found["Resources"]]


def replace(server: Server, user_id: str, path: str, value: Any) -> dict[str, Any]:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": path, "value": value}]}
    return request(server, "PATCH", f"/Users/{user_id}", body)


def start(
    slapd: Slapd,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    anchor: str,
    mode: str,
) -> tuple[Server, str]:
    base = slapd.new_ou()
    toml = ldap_toml(slapd, base, anchor=anchor, rdn_attribute="cn", export_mode=mode)
    return serve(server_factory, write_config(toml), slapd), base


def run_sequence(server: Server, slapd: Slapd, base: str, anchor: str, mode: str) -> None:
    """Entra's sequence: test connection, match, create without anchor, read back,
    patch, disable, rename of the RDN attribute (and, with -dn-, a new -dn-), import,
    delete."""
    probe = request(server, "GET", "/Users" + filter_query(f'PLACEHOLDER eq "{uuid.uuid4()}"'))
    assert probe["totalResults"] == 0
    new = user(1)
    uid = new["AzureObjectID"]
    assert match(server, uid) == []

    created = request(server, "POST", "/Users", {"schemas": [CORE], EXT: new})
    user_id = created["id"]
    # Queued: the id is valid at once and the object readable before its anchor is known.
    assert request(server, "GET", f"/Users/{user_id}")["id"] == user_id
    assert match(server, uid) == [user_id]
    # A change queued before the anchor was known reaches the same entry.
    replace(server, user_id, f"{EXT}:Title", "Store Manager")
    wait_until(lambda: entries(slapd, base).get(uid, {}).get("title") == ["Store Manager"])
    held = entries(slapd, base)[uid]
    assert held["dn"] == f"cn=user1,{base}"
    expected = held["dn"] if anchor == "-dn-" else held["entryuuid"][0]
    if mode == "sync":  # the 201 carries the anchor the directory assigned
        assert created[EXT][anchor] == expected
    wait_until(lambda: request(server, "GET", f"/Users/{user_id}")[EXT].get(anchor) == expected)

    replace(server, user_id, "active", "False")
    wait_until(lambda: entries(slapd, base)[uid].get("pwdaccountlockedtime") == [LOCKED])

    # A rename of the RDN attribute moves the entry; the id stays.
    replace(server, user_id, f"{EXT}:UserName", "renamed1")
    wait_until(lambda: entries(slapd, base)[uid]["dn"] == f"cn=renamed1,{base}")
    moved = entries(slapd, base)[uid]
    assert moved["entryuuid"] == held["entryuuid"]  # moved, not re-created
    expected = moved["dn"] if anchor == "-dn-" else held["entryuuid"][0]
    wait_until(lambda: request(server, "GET", f"/Users/{user_id}")[EXT].get(anchor) == expected)
    replace(server, user_id, f"{EXT}:Title", "Moved")
    wait_until(lambda: entries(slapd, base)[uid].get("title") == ["Moved"])
    if anchor == "-dn-":  # a new -dn- moves the entry, to another container too
        other = slapd.new_ou(base)
        replace(server, user_id, f"{EXT}:-dn-", f"cn=renamed1,{other}")
        wait_until(lambda: entries(slapd, base)[uid]["dn"] == f"cn=renamed1,{other}")
        wait_until(
            lambda: (
                request(server, "GET", f"/Users/{user_id}")[EXT]["-dn-"] == f"cn=renamed1,{other}"
            )
        )

    # The start-up import finds the bound object: same id, no duplicate.
    server.restart()
    assert match(server, uid) == [user_id]
    assert request(server, "GET", "/Users")["totalResults"] == 1

    deleted = server.request("DELETE", f"/Users/{user_id}", name="LDAP")
    assert deleted.status == 204
    wait_until(lambda: entries(slapd, base) == {})
    assert match(server, uid) == []


@pytest.mark.parametrize("mode", ["sync", "queued"])
def test_dn_anchor_entra_sequence(
    slapd: Slapd,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    mode: str,
) -> None:
    server, base = start(slapd, write_config, server_factory, "-dn-", mode)
    run_sequence(server, slapd, base, "-dn-", mode)


@pytest.mark.parametrize("mode", ["sync", "queued"])
def test_server_assigned_anchor_entra_sequence(
    slapd: Slapd,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    mode: str,
) -> None:
    server, base = start(slapd, write_config, server_factory, "entryUUID", mode)
    run_sequence(server, slapd, base, "entryUUID", mode)
