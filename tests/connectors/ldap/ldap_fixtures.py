"""Fixtures of the LDAP connector's tests: a fresh organizational unit per test on the
session's slapd, connectors over it, and direct reads of what the directory holds.

Import ``ldap_ou_fixture`` and ``make_ldap_fixture`` into the test module, with
``slapd_fixture`` from ``tests.ldap_server``, to get ``ldap_ou`` and ``make_ldap``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ecmahost.connectors.base import Record
from ecmahost.connectors.ldap.connector import LdapConnector, LdapSettings
from ecmahost.connectors.ldap.driver import ldap3

from tests.ldap_server import Slapd

__all__ = ["LdapFactory", "entries", "imported", "ldap_ou_fixture", "make_ldap_fixture"]

LdapFactory = Callable[..., Awaitable[LdapConnector]]


@pytest.fixture(name="ldap_ou")
def ldap_ou_fixture(slapd: Slapd) -> Iterator[str]:
    """A new, empty organizational unit, removed with its entries afterwards."""
    dn = slapd.new_ou()
    yield dn
    if slapd.process is not None:
        slapd.remove_tree(dn)


@pytest.fixture(name="make_ldap")
async def make_ldap_fixture(
    slapd: Slapd, ldap_ou: str, tmp_path: Path
) -> AsyncIterator[LdapFactory]:
    """Factory: ``await make_ldap(page_size=7, ...)`` is an open connector over
    ``ldap_ou``; keyword arguments override its settings."""
    opened: list[LdapConnector] = []

    async def make(*, open_now: bool = True, **overrides: Any) -> LdapConnector:
        settings = LdapSettings.model_validate(
            {
                "url": slapd.url,
                "bind_dn": slapd.bind_dn,
                "password": slapd.password,
                "base_dn": ldap_ou,
                **overrides,
            }
        )
        connector = LdapConnector("Dir", settings, tmp_path)
        opened.append(connector)
        if open_now:
            await connector.open()
        return connector

    yield make
    for connector in opened:
        await connector.close()


async def imported(connector: LdapConnector) -> dict[str, Record]:
    """Every record of a full import, by anchor (each anchor once)."""
    found: dict[str, Record] = {}
    async for record in connector.full_import():
        assert record.anchor not in found, f"{record.anchor!r} imported twice"
        found[record.anchor] = record
    return found


def entries(
    slapd: Slapd,
    base: str,
    query: str = "(objectClass=inetOrgPerson)",
    *,
    operational: bool = False,
) -> dict[str, Any]:
    """What the directory holds under ``base``, read with ldap3 directly: DN →
    attributes (every value as text, names lower-cased; ``operational`` adds
    pwdAccountLockedTime)."""
    wanted = [ldap3.ALL_ATTRIBUTES] + (["pwdAccountLockedTime"] if operational else [])
    connection = slapd.connection()
    try:
        connection.search(base, query, ldap3.SUBTREE, attributes=wanted)
        return {
            item["dn"]: {
                name.lower(): [v.decode() for v in values]
                for name, values in item["raw_attributes"].items()
                if values
            }
            for item in connection.response
            if item["type"] == "searchResEntry"
        }
    finally:
        connection.unbind()
