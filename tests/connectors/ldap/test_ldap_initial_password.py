"""Initial passwords in the LDAP connector, on the real slapd: ``userPassword``
written (a bind with it succeeds) and never read back, refused unless export-only;
AD LDS's ``unicodePwd`` in its quoted UTF-16LE form, over TLS only."""

from __future__ import annotations

from typing import Any

import pytest
from ecmahost.connectors.base import Change, ChangeKind, Direction
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.ldap.driver import ldap3
from ecmahost.connectors.ldap.password import (
    check_password,
    encoded_add,
    encoded_modify,
    unicode_pwd,
)

from tests.connectors.ldap.ldap_fixtures import (  # noqa: F401 - fixtures
    LdapFactory,
    imported,
    ldap_ou_fixture,
    make_ldap_fixture,
)
from tests.ldap_server import Slapd, slapd_fixture  # noqa: F401 - a fixture

MAPPED = {
    "AzureObjectID": "uid",
    "CommonName": "cn",
    "Surname": "sn",
    "Title": "title",
    "export_password": "userPassword",
}


def change(kind: ChangeKind, **attributes: Any) -> Change:
    person = {"AzureObjectID": "adele", "CommonName": "Adele Vance", "Surname": "Vance"}
    return Change(kind, "adele", {**person, **attributes})


def binds(slapd: Slapd, dn: str, password: str) -> bool:
    connection = ldap3.Connection(ldap3.Server(slapd.url, connect_timeout=5), dn, password)
    try:
        return bool(connection.bind())
    finally:
        connection.unbind()


async def test_initial_password_user_password_is_written_never_read(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(attributes=MAPPED, export_only=["export_password"])
    served = (await connector.schema()).get("export_password")
    assert served is not None and served.direction is Direction.EXPORT_ONLY
    dn = f"uid=adele,{ldap_ou}"
    results = await connector.export([change(ChangeKind.ADD, export_password="first-Pw-1")])
    assert results[0].ok, results[0].error
    assert binds(slapd, dn, "first-Pw-1")
    assert "export_password" not in (await imported(connector))["adele"].attributes

    results = await connector.export([change(ChangeKind.REPLACE, export_password="reset-Pw-2")])
    assert results[0].ok, results[0].error
    assert binds(slapd, dn, "reset-Pw-2") and not binds(slapd, dn, "first-Pw-1")
    # A change without it (the queue erased it once exported) leaves it as it is.
    results = await connector.export([change(ChangeKind.REPLACE, Title="Boss")])
    assert results[0].ok, results[0].error
    assert binds(slapd, dn, "reset-Pw-2")


async def test_initial_password_attribute_must_be_export_only(make_ldap: LdapFactory) -> None:
    with pytest.raises(ConfigError, match="list 'export_password' in export_only"):
        await make_ldap(attributes=MAPPED)


def test_initial_password_unicode_pwd_is_quoted_utf16_over_tls_only() -> None:
    assert unicode_pwd("Pässw0rd") == '"Pässw0rd"'.encode("utf-16-le")
    added = encoded_add({"unicodePwd": ["pw-1"], "cn": ["Adele"]})
    assert added == {"unicodePwd": ['"pw-1"'.encode("utf-16-le")], "cn": ["Adele"]}
    modified = encoded_modify({"unicodePwd": [("MODIFY_REPLACE", ["pw-2"])]})
    assert modified == {"unicodePwd": [("MODIFY_REPLACE", ['"pw-2"'.encode("utf-16-le")])]}
    assert encoded_add({"userPassword": ["pw-1"]}) == {"userPassword": ["pw-1"]}

    export_only = Direction.EXPORT_ONLY
    check_password("pw", "unicodePwd", export_only, encrypted=True, key="k")
    with pytest.raises(ConfigError, match="encrypted connection"):
        check_password("pw", "unicodePwd", export_only, encrypted=False, key="k")
    check_password("pw", "userPassword", export_only, encrypted=False, key="k")
    with pytest.raises(ConfigError, match="export_only"):
        check_password("pw", "userPassword", None, encrypted=True, key="k")
