"""Anchors the directory assigns, against a real slapd: an add without an anchor
returns the one the server gave the entry (its DN, or its entryUUID), a move of a DN
anchor returns the new DN, and a delete of an object never added does nothing."""

from __future__ import annotations

from ecmahost.connectors.base import Change, ChangeKind, Result
from ecmahost.connectors.ldap.driver import ldap3

from tests.connectors.ldap.ldap_fixtures import (  # noqa: F401 - fixtures
    LdapFactory,
    entries,
    imported,
    ldap_ou_fixture,
    make_ldap_fixture,
)
from tests.ldap_server import Slapd, slapd_fixture  # noqa: F401 - a fixture

PERSON = {"uid": "avance", "cn": "Adele Vance", "sn": "Vance"}


def entry_uuid(slapd: Slapd, dn: str) -> str:
    """The entryUUID slapd gave the entry ``dn``."""
    connection = slapd.connection()
    try:
        connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID"])
        return str(connection.response[0]["raw_attributes"]["entryUUID"][0].decode())
    finally:
        connection.unbind()


def ok(results: object) -> list[str]:
    assert isinstance(results, list)
    assert all(isinstance(r, Result) and r.error is None for r in results), results
    return [r.anchor for r in results]


async def test_dn_anchor_add_returns_the_dn_and_a_move_the_new_one(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(anchor="-dn-", rdn_attribute="cn")
    schema = await connector.schema()
    assert schema.anchor.name == "-dn-" and schema.anchor.assigned

    [dn] = ok(await connector.export([Change(ChangeKind.ADD, "", PERSON)]))
    assert dn == f"cn=Adele Vance,{ldap_ou}"
    assert list(entries(slapd, ldap_ou)) == [dn]
    assert list(await imported(connector)) == [dn]

    renamed = {**PERSON, "cn": "Adele Smith", "-dn-": dn}
    [moved] = ok(await connector.export([Change(ChangeKind.REPLACE, dn, renamed)]))
    assert moved == f"cn=Adele Smith,{ldap_ou}"
    assert list(entries(slapd, ldap_ou)) == [moved]

    # A new -dn- moves the entry, to another container too.
    other = slapd.new_ou(ldap_ou)
    asked = {**renamed, "-dn-": f"CN=Adele Smith,{other}"}
    [elsewhere] = ok(await connector.export([Change(ChangeKind.REPLACE, moved, asked)]))
    assert elsewhere.lower() == f"cn=adele smith,{other}".lower()
    assert [dn.lower() for dn in entries(slapd, ldap_ou)] == [elsewhere.lower()]
    # The -dn- it holds asks for nothing.
    again = {**asked, "-dn-": elsewhere}
    assert ok(await connector.export([Change(ChangeKind.REPLACE, elsewhere, again)])) == [elsewhere]

    ok(await connector.export([Change(ChangeKind.DELETE, elsewhere)]))
    assert entries(slapd, ldap_ou) == {}


async def test_server_assigned_anchor_add_returns_the_entry_uuid(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(anchor="entryUUID")
    schema = await connector.schema()
    assert schema.anchor.name == "entryUUID" and schema.anchor.assigned

    [assigned] = ok(await connector.export([Change(ChangeKind.ADD, "", PERSON)]))
    assert assigned == entry_uuid(slapd, f"uid=avance,{ldap_ou}")
    assert (await imported(connector))[assigned].attributes["uid"] == "avance"

    # The anchor is found by its value and never written back.
    changed = {**PERSON, "title": "Manager", "entryUUID": assigned}
    assert ok(await connector.export([Change(ChangeKind.REPLACE, assigned, changed)])) == [assigned]
    assert entries(slapd, ldap_ou)[f"uid=avance,{ldap_ou}"]["title"] == ["Manager"]

    # Never added: nothing to delete, and nothing else is touched.
    ok(await connector.export([Change(ChangeKind.DELETE, "")]))
    assert len(entries(slapd, ldap_ou)) == 1
    ok(await connector.export([Change(ChangeKind.DELETE, assigned)]))
    assert entries(slapd, ldap_ou) == {}


async def test_server_assigned_anchor_a_value_sent_on_the_add_is_not_written(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(anchor="entryUUID")
    sent = {**PERSON, "entryUUID": "00000000-0000-4000-8000-000000000000"}
    [assigned] = ok(await connector.export([Change(ChangeKind.ADD, "", sent)]))
    assert assigned == entry_uuid(slapd, f"uid=avance,{ldap_ou}") != sent["entryUUID"]
