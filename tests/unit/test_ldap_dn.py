"""The RFC 4514 DN parser and the containment rule for a ``-dn-`` a client sends."""

from __future__ import annotations

import pytest
from ecmahost.connectors.ldap.dn import (
    Ava,
    DnRefusedError,
    child_dn,
    is_within,
    parse_dn,
    render,
)
from ecmahost.connectors.ldap.settings import dn_within

BASE = "ou=people,dc=example,dc=org"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("uid=a,dc=org", ((Ava("uid", "a"),), (Ava("dc", "org"),))),
        (r"cn=a\,b,dc=org", ((Ava("cn", "a,b"),), (Ava("dc", "org"),))),
        (r"cn=a\2Cb,dc=org", ((Ava("cn", "a,b"),), (Ava("dc", "org"),))),
        (r"cn=\ a\ ,dc=org", ((Ava("cn", " a "),), (Ava("dc", "org"),))),
        (r"cn=z\C3\ABe", ((Ava("cn", "zëe"),),)),
        ("cn=a b , dc=org", ((Ava("cn", "a b"),), (Ava("dc", "org"),))),
        ("cn=a=b", ((Ava("cn", "a=b"),),)),
        ("uid=x+ou=y,dc=org", ((Ava("uid", "x"), Ava("ou", "y")), (Ava("dc", "org"),))),
        ("cn=#0401", ((Ava("cn", "#0401", hex_form=True),),)),
        ("2.5.4.3=a", ((Ava("2.5.4.3", "a"),),)),
        ("", ()),
    ],
)
def test_parse(text: str, parsed: tuple[tuple[Ava, ...], ...]) -> None:
    assert parse_dn(text) == parsed


@pytest.mark.parametrize(
    "text",
    ["cn", "cn=", "cn=a,", "=a", "c n=a", "cn=a;b", 'cn="a"', r"cn=a\zz", r"cn=\FF", "cn=#041"],
)
def test_not_a_dn(text: str) -> None:
    with pytest.raises(ValueError):
        parse_dn(text)


def test_render_escapes_every_value() -> None:
    dn = parse_dn(r"cn=a\,b\+c\ ,dc=org")
    assert render(dn) == r"cn=a\,b\+c\ ,dc=org"
    assert parse_dn(render(dn)) == dn


@pytest.mark.parametrize(
    ("dn", "base", "within"),
    [
        (f"uid=a,{BASE}", BASE, True),
        (BASE, BASE, True),
        ("uid=a,OU=People,DC=Example,DC=ORG", BASE, True),
        (r"uid=a,ou=peopl\65,dc=example,dc=org", BASE, True),
        ("uid=evil1+ou=people,dc=example,dc=org", BASE, False),
        ("ou=people+uid=evil1,dc=example,dc=org", BASE, False),
        (r"uid=a\,ou=people,dc=example,dc=org", BASE, False),
        ("uid=a,ou=peoplex,dc=example,dc=org", BASE, False),
        ("dc=example,dc=org", BASE, False),
    ],
)
def test_within(dn: str, base: str, within: bool) -> None:
    assert is_within(parse_dn(dn), parse_dn(base)) is within
    assert dn_within(dn, base) is within


@pytest.mark.parametrize(
    ("given", "written"),
    [
        (f"uid=a,{BASE}", f"uid=a,{BASE}"),
        (r"uid=O'Brien\, Bob,ou=People,dc=Example,dc=org", rf"uid=O'Brien\, Bob,{BASE}"),
        (rf"uid=a\2Cb,{BASE}", rf"uid=a\,b,{BASE}"),
        (rf"uid=\ lead and trail\ ,{BASE}", rf"uid=\ lead and trail\ ,{BASE}"),
        (f"cn=a=b,ou=sub,{BASE}", rf"cn=a\=b,ou=sub,{BASE}"),
        (f"uid=a , {BASE}", f"uid=a,{BASE}"),
    ],
)
def test_child_dn_is_rebuilt(given: str, written: str) -> None:
    assert child_dn(given, BASE) == written


@pytest.mark.parametrize(
    ("given", "rule"),
    [
        ("uid=evil1+ou=people,dc=example,dc=org", "multi-valued"),
        ("ou=people+uid=evil1,dc=example,dc=org", "multi-valued"),
        (f"uid=a+cn=b,{BASE}", "multi-valued"),
        (f"uid=a,ou=x+cn=y,{BASE}", "multi-valued"),
        (f"uid=#04024869,{BASE}", "#-hex"),
        (BASE, "below base_dn"),
        ("OU=People,DC=example,DC=org", "below base_dn"),
        ("uid=out,dc=example,dc=org", "below base_dn"),
        (r"uid=a\,ou=people,dc=example,dc=org", "below base_dn"),
        (r"uid=a,ou=people\,dc=example,dc=org", "below base_dn"),
        ("uid=a,ou=people,dc=example,dc=org,dc=evil", "below base_dn"),
        ("uid=a;ou=people", "not a distinguished name"),
    ],
)
def test_child_dn_refused(given: str, rule: str) -> None:
    with pytest.raises(DnRefusedError, match=rule) as refused:
        child_dn(given, BASE)
    assert "evil1" not in str(refused.value)
