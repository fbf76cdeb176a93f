"""Multi-valued attributes of the LDAP connector against a real slapd: the
attributes ``multi_valued`` names are served as sets and written whole, objectClass
among them; the settings refuse what cannot hold a set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from ecmahost.connectors.base import Change, ChangeKind, Result
from ecmahost.connectors.exceptions import ConfigError

from tests.connectors.ldap.ldap_fixtures import (  # noqa: F401 - fixtures
    LdapFactory,
    entries,
    imported,
    ldap_ou_fixture,
    make_ldap_fixture,
)
from tests.ldap_server import Slapd, slapd_fixture  # noqa: F401 - a fixture

SETS = {"multi_valued": ["mail", "telephoneNumber", "objectClass"]}
PERSON = {"cn": "Adele Vance", "sn": "Vance"}


def change(kind: ChangeKind, anchor: str, **attributes: Any) -> Change:
    return Change(kind, anchor, {"uid": anchor, **PERSON, **attributes})


def errors(results: Sequence[Result]) -> list[Exception | None]:
    return [r.error for r in results]


def held(slapd: Slapd, base: str, uid: str) -> dict[str, list[str]]:
    found = entries(slapd, base, "(objectClass=*)")
    return next(a for a in found.values() if a.get("uid") == [uid])


async def test_multi_valued_ldap_schema_marks_the_named_attributes(
    make_ldap: LdapFactory,
) -> None:
    schema = await (await make_ldap(**SETS)).schema()
    sets = sorted(a.name for a in schema.attributes if a.multi_valued)
    assert sets == ["mail", "objectClass", "telephoneNumber"]
    assert not schema.get("cn").multi_valued  # type: ignore[union-attr]  # not named


async def test_multi_valued_ldap_sets_are_written_whole_and_imported_as_sets(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(**SETS)
    mails = ["a@example.org", "b@example.org"]
    classes = ["inetOrgPerson", "organizationalPerson", "person", "top"]
    added = change(ChangeKind.ADD, "adele", mail=mails, objectClass=classes)
    assert errors(await connector.export([added])) == [None]
    entry = held(slapd, ldap_ou, "adele")
    assert sorted(entry["mail"]) == mails
    assert sorted(entry["objectclass"]) == classes

    record = (await imported(connector))["adele"]
    assert record.attributes["mail"] == mails
    assert record.attributes["objectClass"] == classes

    # One value out, one in, another attribute as a set of one.
    replaced = change(
        ChangeKind.REPLACE,
        "adele",
        mail=["c@example.org", "b@example.org"],
        telephoneNumber=["+1 555 0100"],
        objectClass=["inetOrgPerson"],
    )
    assert errors(await connector.export([replaced])) == [None]
    entry = held(slapd, ldap_ou, "adele")
    assert sorted(entry["mail"]) == ["b@example.org", "c@example.org"]
    assert entry["telephonenumber"] == ["+1 555 0100"]
    # The configured classes stay whatever the set sent: the entry stays served.
    assert entry["objectclass"] == ["inetOrgPerson"]
    assert "adele" in await imported(connector)

    # A set without the configured class gets it added: the entry stays served.
    bare = change(ChangeKind.REPLACE, "adele", objectClass=["top"])
    assert errors(await connector.export([bare])) == [None]
    assert sorted(held(slapd, ldap_ou, "adele")["objectclass"]) == ["inetOrgPerson", "top"]

    cleared = change(ChangeKind.REPLACE, "adele", objectClass=["inetOrgPerson"])
    assert errors(await connector.export([cleared])) == [None]
    entry = held(slapd, ldap_ou, "adele")
    assert "mail" not in entry and "telephonenumber" not in entry


async def test_multi_valued_ldap_set_in_other_order_writes_nothing(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(**SETS)
    slapd.ldapadd(
        f"dn: uid=multi,{ldap_ou}\nobjectClass: inetOrgPerson\nuid: multi\ncn: M\nsn: M\n"
        "mail: Second@example.org\nmail: first@example.org\n"
    )
    record = (await imported(connector))["multi"]
    assert record.attributes["mail"] == ["first@example.org", "Second@example.org"]
    before = entries(slapd, ldap_ou, "(uid=multi)", operational=True)
    same = Change(
        ChangeKind.REPLACE,
        "multi",
        {**record.attributes, "mail": ["Second@example.org", "first@example.org"]},
    )
    assert errors(await connector.export([same])) == [None]
    assert entries(slapd, ldap_ou, "(uid=multi)", operational=True) == before

    # A new spelling is written: the directory then holds what SCIM shows.
    respelled = Change(
        ChangeKind.REPLACE, "multi", {**record.attributes, "mail": ["FIRST@example.org"]}
    )
    assert errors(await connector.export([respelled])) == [None]
    assert held(slapd, ldap_ou, "multi")["mail"] == ["FIRST@example.org"]


async def test_multi_valued_ldap_a_set_for_a_single_valued_attribute_fails_the_change(
    make_ldap: LdapFactory,
) -> None:
    connector = await make_ldap(**SETS)
    bad = change(ChangeKind.ADD, "adele", title=["one", "two"])
    [error] = errors(await connector.export([bad]))
    assert error is not None and "title" in str(error)


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (["displayName"], "SINGLE-VALUE"),
        (["uid"], "names the entry"),
        (["noSuchAttribute"], "not served"),
        (["mail", "MAIL"], "once"),
    ],
)
async def test_multi_valued_ldap_settings_refuse(
    make_ldap: LdapFactory, names: list[str], fragment: str
) -> None:
    with pytest.raises((ConfigError, ValueError)) as caught:
        await make_ldap(multi_valued=names)
    assert fragment in str(caught.value)
