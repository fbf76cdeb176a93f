"""Attribute flow direction in the LDAP connector, on the real slapd: a server-assigned
attribute served import-only, an export-only attribute written and never read back."""

from __future__ import annotations

from typing import Any

import pytest
from ecmahost.connectors.base import Change, ChangeKind, Direction
from ecmahost.connectors.exceptions import ConfigError

from tests.connectors.ldap.ldap_fixtures import (  # noqa: F401 - fixtures
    LdapFactory,
    entries,
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
    "Created": "createTimestamp",
    "Note": "description",
}


def change(kind: ChangeKind, anchor: str, **attributes: Any) -> Change:
    person = {"AzureObjectID": anchor, "CommonName": "Adele Vance", "Surname": "Vance"}
    return Change(kind, anchor, {**person, **attributes})


def held(slapd: Slapd, base: str) -> dict[str, list[str]]:
    (only,) = entries(slapd, base).values()
    return dict(only)


async def test_create_timestamp_is_import_only(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(attributes=MAPPED, import_only=["Created"])
    assert (await connector.schema()).get("Created").direction is Direction.IMPORT_ONLY  # type: ignore[union-attr]
    # Entra sends it (or a record is exported back): ignored, the server keeps its own.
    results = await connector.export([change(ChangeKind.ADD, "adele", Created="19990101000000Z")])
    assert results[0].ok, results[0].error
    created = (await imported(connector))["adele"].attributes["Created"]
    assert isinstance(created, str) and not created.startswith("1999")
    results = await connector.export([change(ChangeKind.REPLACE, "adele", Title="Boss")])
    assert results[0].ok, results[0].error
    record = (await imported(connector))["adele"]
    assert record.attributes["Created"] == created
    assert record.attributes["Title"] == "Boss"


async def test_a_server_assigned_attribute_needs_import_only(make_ldap: LdapFactory) -> None:
    with pytest.raises(ConfigError, match="assigned by the server"):
        await make_ldap(attributes=MAPPED)


async def test_export_only_is_written_and_never_read_back(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(attributes=MAPPED, import_only=["Created"], export_only=["note"])
    results = await connector.export([change(ChangeKind.ADD, "adele", Note="initial")])
    assert results[0].ok, results[0].error
    assert held(slapd, ldap_ou)["description"] == ["initial"]
    assert "Note" not in (await imported(connector))["adele"].attributes
    # The next change does not carry it: the directory keeps it.
    results = await connector.export([change(ChangeKind.REPLACE, "adele", Title="Boss")])
    assert results[0].ok, results[0].error
    assert held(slapd, ldap_ou)["description"] == ["initial"]
    assert held(slapd, ldap_ou)["title"] == ["Boss"]
