"""A ``-dn-`` sent on a create, against a real slapd: DNs that step out of base_dn
(multi-valued RDNs, escaped separators, the base itself) are refused and nothing is
created anywhere; legitimate DNs with escapes, spaces and other case are written
below base_dn as parsed."""

from __future__ import annotations

from typing import Any

from ecmahost.connectors.base import Change, ChangeKind
from ecmahost.connectors.exceptions import ConflictError, PermanentError
from ecmahost.connectors.ldap.dn import parse_dn, render

from tests.connectors.ldap.ldap_fixtures import (  # noqa: F401 - fixtures
    LdapFactory,
    entries,
    ldap_ou_fixture,
    make_ldap_fixture,
)
from tests.ldap_server import SUFFIX, Slapd, slapd_fixture  # noqa: F401 - a fixture

PERSON = {"cn": "Eve", "sn": "Evil"}


def add(anchor: str, dn: str, **attributes: Any) -> Change:
    return Change(ChangeKind.ADD, anchor, {"uid": anchor, "-dn-": dn, **PERSON, **attributes})


def escaping(ldap_ou: str) -> list[tuple[str, str]]:
    """(-dn- as sent, the rule named): every way out of ``ldap_ou`` we know of."""
    unit = ldap_ou.split(",", 1)[0]  # ou=tN
    return [
        (f"uid=evil1+{ldap_ou}", "multi-valued"),  # the reviewer's DN: an entry beside
        (f"{unit}+uid=evil2,{SUFFIX}", "multi-valued"),
        (f"uid=evil3+cn=x,{ldap_ou}", "multi-valued"),
        (f"uid=evil4,{unit.upper()}+uid=y,{SUFFIX}", "multi-valued"),
        (rf"uid=evil5\,{ldap_ou}", "below base_dn"),  # one RDN, its value holds a comma
        (rf"uid=evil6\2C{ldap_ou}", "below base_dn"),
        (f"uid=evil7,{SUFFIX}", "below base_dn"),
        (ldap_ou, "below base_dn"),
        (rf"uid=evil8,{unit}\,dc=example,dc=org", "below base_dn"),
        (f"uid=#6576696c39,{ldap_ou}", "#-hex"),
    ]


async def test_escaping_dns_are_refused_and_nothing_is_created(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap()
    cases = escaping(ldap_ou)
    changes = [add(f"evil{n}", dn) for n, (dn, _) in enumerate(cases)]
    results = await connector.export(changes)
    for (dn, rule), result in zip(cases, results, strict=True):
        error = result.error
        assert isinstance(error, PermanentError), dn
        assert not isinstance(error, ConflictError), dn
        assert rule in str(error) and "-dn-" in str(error), (dn, str(error))
    assert entries(slapd, SUFFIX, "(|(uid=evil*)(cn=Eve))") == {}


async def test_legitimate_dns_are_written_as_parsed(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap()
    inner = slapd.new_ou(ldap_ou)
    upper = ldap_ou.upper().replace("OU=", "Ou=")
    wanted = {
        "comma": (rf"uid=Vance\, Adele,{ldap_ou}", rf"uid=Vance\, Adele,{ldap_ou}"),
        "hexcomma": (rf"uid=Doe\2C John,{ldap_ou}", rf"uid=Doe\, John,{ldap_ou}"),
        "spaces": (rf"uid=\ padded\ ,  {inner}", rf"uid=\ padded\ ,{inner}"),
        "case": (f"UID=cased,{upper}", f"UID=cased,{ldap_ou}"),
        "plus": (rf"uid=a\+b,{ldap_ou}", rf"uid=a\+b,{ldap_ou}"),
    }
    changes = [add(anchor, given) for anchor, (given, _) in wanted.items()]
    assert [r.error for r in await connector.export(changes)] == [None] * len(wanted)
    # Only these entries, each under the DN its -dn- parses to, nothing elsewhere.
    # The server writes DNs its own way (\\2C for \\,): compare them parsed.
    held = {canonical(dn) for dn in entries(slapd, SUFFIX, "(cn=Eve)")}
    assert held == {canonical(written) for _, written in wanted.values()}


def canonical(dn: str) -> str:
    return render(parse_dn(dn)).lower()


async def test_conflicts_name_the_attribute_not_the_other_entry(
    make_ldap: LdapFactory, ldap_ou: str
) -> None:
    connector = await make_ldap(
        anchor="employeeNumber",
        rdn_attribute="cn",
        attributes={"Id": "employeeNumber", "cn": "cn", "sn": "sn", "uid": "uid"},
    )
    holder = Change(ChangeKind.ADD, "1", {"Id": "1", "cn": "Same", "sn": "S", "uid": "Secret1"})
    assert [r.error for r in await connector.export([holder])] == [None]
    same_name = Change(ChangeKind.ADD, "2", {"Id": "2", "cn": "Same", "sn": "S"})
    by_anchor = await make_ldap(attributes={"uid": "uid", "cn": "cn", "sn": "sn"})
    same_anchor = Change(ChangeKind.ADD, "SECRET1", {"uid": "SECRET1", "cn": "x", "sn": "S"})
    [named] = [r.error for r in await connector.export([same_name])]
    [anchored] = [r.error for r in await by_anchor.export([same_anchor])]
    assert isinstance(named, ConflictError) and "cn 'Same' is taken" in str(named)
    assert isinstance(anchored, ConflictError) and "uid='SECRET1' is taken" in str(anchored)
    for error in (named, anchored):  # neither the holder's DN nor its values
        assert ldap_ou.lower() not in str(error).lower() and "Secret1" not in str(error)
