"""The real ``ecmahost serve`` over a real slapd with multi-valued attributes:
Entra's objectClass array and mail sets land in the directory as sets, show as SCIM
arrays, match ``eq`` by any value, and change by PATCH add and remove."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from tests.acceptance.conftest import Server, filter_query
from tests.acceptance.test_ldap_e2e import PATCH_OP, directory, ldap_toml, serve
from tests.conftest import CORE, EXT
from tests.ldap_server import Slapd, slapd_fixture  # noqa: F401 - a fixture

CLASSES = ["top", "person", "organizationalPerson", "inetOrgPerson"]
"""What Microsoft's LDAP guide maps objectClass to: an array."""


def multi_valued_toml(slapd: Slapd, base: str) -> str:
    toml = ldap_toml(slapd, base)
    toml = toml.replace(
        'object_classes = ["inetOrgPerson"]\n',
        'object_classes = ["inetOrgPerson"]\nmulti_valued = ["Email", "Phone", "objectClass"]\n',
    )
    return toml.replace(
        "[connectors.LDAP.settings.attributes]\n",
        '[connectors.LDAP.settings.attributes]\nPhone = "telephoneNumber"\n',
    )


def test_multi_valued_ldap_object_class_sent_as_an_array_is_accepted(
    slapd: Slapd, write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    base = slapd.new_ou()
    server = serve(server_factory, write_config(multi_valued_toml(slapd, base)), slapd)
    schemas = server.request("GET", "/Schemas", name="LDAP")
    extension = next(s for s in schemas.body["Resources"] if s["id"] == EXT)
    multi = sorted(a["name"] for a in extension["attributes"] if a["multiValued"])
    assert multi == ["Email", "Phone", "objectClass"]

    anchor = str(uuid.uuid4())
    user = {
        "AzureObjectID": anchor,
        "UserName": "adele@contoso.example",
        "Surname": "Vance",
        "objectClass": CLASSES,
        "Email": ["adele@contoso.example", "a.vance@contoso.example", "ADELE@contoso.example"],
        "Title": ["Engineer"],  # single-valued: an array of one is its value
    }
    created = server.request("POST", "/Users", {"schemas": [CORE], EXT: user}, name="LDAP")
    assert created.status == 201, created.body
    shown = created.body[EXT]
    assert shown["objectClass"] == sorted(CLASSES, key=str.casefold)
    assert shown["Email"] == ["a.vance@contoso.example", "adele@contoso.example"]
    assert shown["Title"] == "Engineer"
    entry = directory(slapd, base)[anchor]
    assert sorted(entry["objectclass"]) == sorted(CLASSES)
    assert sorted(entry["mail"]) == ["a.vance@contoso.example", "adele@contoso.example"]

    # eq on a set matches any of its values.
    for mail in ("a.vance@contoso.example", "ADELE@CONTOSO.EXAMPLE"):
        found = server.request("GET", "/Users" + filter_query(f'Email eq "{mail}"'), name="LDAP")
        assert [r["id"] for r in found.body["Resources"]] == [created.body["id"]], mail

    user_id = created.body["id"]
    operations = [
        {"op": "add", "path": f"{EXT}:Phone", "value": ["+1 555 0100", "+1 555 0101"]},
        {"op": "add", "path": f"{EXT}:Email", "value": "third@contoso.example"},
        {"op": "remove", "path": f'{EXT}:Email[value eq "adele@contoso.example"]'},
        {"op": "remove", "path": f"{EXT}:Phone", "value": [{"value": "+1 555 0100"}]},
    ]
    patched = server.request(
        "PATCH",
        f"/Users/{user_id}",
        {"schemas": [PATCH_OP], "Operations": operations},
        name="LDAP",
    )
    assert patched.status == 200, patched.body
    assert patched.body[EXT]["Email"] == ["a.vance@contoso.example", "third@contoso.example"]
    assert patched.body[EXT]["Phone"] == ["+1 555 0101"]
    entry = directory(slapd, base)[anchor]
    assert sorted(entry["mail"]) == ["a.vance@contoso.example", "third@contoso.example"]
    assert entry["telephonenumber"] == ["+1 555 0101"]

    gone = server.request(
        "GET", "/Users" + filter_query('Email eq "adele@contoso.example"'), name="LDAP"
    )
    assert gone.body["totalResults"] == 0


def test_multi_valued_ldap_several_values_for_a_single_valued_attribute_is_a_400(
    slapd: Slapd, write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    base = slapd.new_ou()
    server = serve(server_factory, write_config(multi_valued_toml(slapd, base)), slapd)
    user = {"AzureObjectID": str(uuid.uuid4()), "UserName": "x", "Title": ["a", "b"]}
    refused = server.request("POST", "/Users", {"schemas": [CORE], EXT: user}, name="LDAP")
    assert refused.status == 400
    assert "Title" in refused.body["detail"]
    assert directory(slapd, base) == {}


def test_multi_valued_ldap_imported_sets_match_filters_by_any_value(
    slapd: Slapd, write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    base = slapd.new_ou()
    slapd.ldapadd(
        f"dn: uid=multi,{base}\nobjectClass: inetOrgPerson\nuid: multi\ncn: M\nsn: Multi\n"
        "mail: first@example.org\nmail: second@example.org\n"
    )
    server = serve(server_factory, write_config(multi_valued_toml(slapd, base)), slapd)
    for expression in (
        'Email eq "second@example.org"',  # one eq: the index lookup
        'Email sw "SECOND" and Surname eq "Multi"',  # the general path
        'Email eq "first@example.org" or Email eq "nobody@example.org"',
    ):
        found = server.request("GET", "/Users" + filter_query(expression), name="LDAP")
        assert found.body["totalResults"] == 1, expression
        shown = found.body["Resources"][0][EXT]
        assert shown["Email"] == ["first@example.org", "second@example.org"]
    none = server.request("GET", "/Users" + filter_query('Email eq "third@x.org"'), name="LDAP")
    assert none.body["totalResults"] == 0
