"""LdapConnector against a real OpenLDAP server: the shared conformance suite, then
what is particular to LDAP: settings, schema discovery, paging, DNs and RDNs,
multi-valued attributes, the disable flag, error classes, TLS and outages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from ecmahost.connectors.base import (
    Capability,
    Change,
    ChangeKind,
    DataType,
    Record,
    Result,
    Value,
)
from ecmahost.connectors.exceptions import (
    ConfigError,
    ConflictError,
    PermanentError,
    TransientError,
)
from ecmahost.connectors.ldap.connector import LdapConnector, LdapSettings
from ecmahost.connectors.ldap.driver import ldap3
from ecmahost.connectors.ldap.escape import escape_dn_value, escape_filter_value
from pydantic import ValidationError

from tests.connectors.conformance import ConnectorConformance, Objects
from tests.connectors.ldap.ldap_fixtures import (  # noqa: F401 - fixtures
    LdapFactory,
    entries,
    imported,
    ldap_ou_fixture,
    make_ldap_fixture,
)
from tests.ldap_server import UNIQUE_OU, Slapd, slapd_fixture  # noqa: F401 - a fixture

HOSTILE_CHARS = '*()\\,+=";<>#'
HOSTILE = [
    *HOSTILE_CHARS,
    *(f"a{char}b" for char in HOSTILE_CHARS),
    " leading space",
    "trailing space ",
    "#hash first",
    "zoë Ångström",
    "東京都",
    "ends with a backslash\\",
    'all of them: *()\\,+=";<> # ',
]
"""Anchors (and RDN values) that must survive DNs, filters and the round trip."""

PERSON = {"cn": "Adele Vance", "sn": "Vance"}


def add(anchor: str, **attributes: Any) -> Change:
    return Change(ChangeKind.ADD, anchor, {"uid": anchor, **PERSON, **attributes})


def replace(anchor: str, **attributes: Any) -> Change:
    return Change(ChangeKind.REPLACE, anchor, {"uid": anchor, **PERSON, **attributes})


def delete(anchor: str) -> Change:
    return Change(ChangeKind.DELETE, anchor)


def errors(results: Sequence[Result]) -> list[Exception | None]:
    return [r.error for r in results]


def by_uid(slapd: Slapd, base: str) -> dict[str, dict[str, list[str]]]:
    found = entries(slapd, base, operational=True)
    return {attributes["uid"][0]: {**attributes, "dn": [dn]} for dn, attributes in found.items()}


# -- the conformance suite -------------------------------------------------------------

CONFORMANCE_ATTRIBUTES: dict[str, tuple[str, DataType]] = {
    "AzureObjectID": ("uid", DataType.STRING),
    "DisplayName": ("displayName", DataType.STRING),
    "CommonName": ("cn", DataType.STRING),
    "Surname": ("sn", DataType.STRING),
    "Title": ("title", DataType.STRING),
    "EmployeeId": ("employeeNumber", DataType.STRING),
    "Email": ("mail", DataType.STRING),
    "Level": ("ecmahostLevel", DataType.INTEGER),
    "IsActive": ("ecmahostActive", DataType.BOOLEAN),  # the disable flag, TRUE or FALSE
}
"""The suite's users as inetOrgPerson entries (cn and sn are required there) with the
test schema's auxiliary class for an Integer and a Boolean."""

BOOLEAN_FLAG = {
    "ldap_attribute": "ecmahostActive",
    "disabled_value": "FALSE",
    "enabled_value": "TRUE",
}
"""The disable flag on the test schema's Boolean attribute."""


def _typed(text: str, data_type: DataType) -> Value:
    if data_type is DataType.INTEGER:
        return int(text)
    if data_type is DataType.BOOLEAN:
        return {"TRUE": True, "FALSE": False}[text]
    return text


class TestLdapConformance(ConnectorConformance):
    expected_attributes = {name: t for name, (_, t) in CONFORMANCE_ATTRIBUTES.items()}

    @pytest.fixture
    async def connector(self, make_ldap: LdapFactory) -> LdapConnector:
        return await make_ldap(
            object_classes=["inetOrgPerson", "ecmahostAccount"],
            attributes={
                name: ldap
                for name, (ldap, _) in CONFORMANCE_ATTRIBUTES.items()
                if name != "IsActive"
            },
            disable=BOOLEAN_FLAG,
            serve_dn=False,  # the suite's objects cannot know the DNs the server writes
            page_size=4,  # the suite's imports span several pages
        )

    @pytest.fixture
    def target_reader(self, slapd: Slapd, ldap_ou: str) -> Callable[[], Awaitable[Objects]]:
        async def read() -> Objects:
            found: Objects = {}
            for values in entries(slapd, ldap_ou).values():
                anchor = values["uid"][0]
                assert anchor not in found, f"{anchor!r} is held twice"
                found[anchor] = {
                    name: _typed(values[ldap.lower()][0], data_type)
                    for name, (ldap, data_type) in CONFORMANCE_ATTRIBUTES.items()
                    if ldap.lower() in values
                }
            return found

        return read

    @pytest.fixture
    def seed(self, slapd: Slapd, ldap_ou: str) -> Callable[[Sequence[Record]], Awaitable[None]]:
        async def write(records: Sequence[Record]) -> None:
            connection = slapd.connection()
            try:
                for item in records:
                    connection.add(*_entry_of(item, ldap_ou))
            finally:
                connection.unbind()

        return write


def _entry_of(item: Record, parent: str) -> tuple[str, list[str], dict[str, str]]:
    values: dict[str, str] = {}
    for name, value in item.attributes.items():
        ldap, data_type = CONFORMANCE_ATTRIBUTES[name]
        values[ldap] = (
            ("TRUE" if value else "FALSE") if data_type is DataType.BOOLEAN else str(value)
        )
    dn = f"uid={escape_dn_value(item.anchor)},{parent}"
    return dn, ["inetOrgPerson", "ecmahostAccount"], values


# -- settings and escaping (no server) ------------------------------------------------

BASE = {"url": "ldap://127.0.0.1", "bind_dn": "cn=a,dc=x", "password": "p", "base_dn": "dc=x"}


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"url": "http://127.0.0.1"}, "url"),
        ({"url": "ldap://127.0.0.1/dc=x"}, "url"),
        ({"url": "ldaps://127.0.0.1", "start_tls": True}, ""),
        ({"base_dn": "not a dn"}, "base_dn"),
        ({"container": "ou=people,dc=elsewhere"}, ""),
        ({"attributes": {"-dn-": "cn"}}, "attributes"),
        ({"attributes": {}}, "attributes"),
        ({"attributes": {"Title": ""}}, "attributes"),
        ({"object_classes": []}, "object_classes"),
        ({"page_size": 0}, "page_size"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"disable": {"ldap_attribute": "x", "disabled_value": "A", "enabled_value": "a"}}, ""),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        LdapSettings.model_validate({**BASE, **overrides})
    assert where in ".".join(str(p) for p in caught.value.errors()[0]["loc"])


def test_settings_defaults() -> None:
    settings = LdapSettings.model_validate({**BASE, "password": "Pa55-word"})
    assert settings.new_entries_under == "dc=x"
    assert (settings.anchor, settings.rdn_attribute, settings.page_size) == ("uid", "uid", 500)
    assert settings.object_classes == ("inetOrgPerson",)
    assert "Pa55-word" not in repr(settings)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", "plain"),
        ('a,b+c"d\\e<f>g;h=i', 'a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h\\=i'),
        (" lead", "\\ lead"),
        ("trail ", "trail\\ "),
        (" ", "\\ "),
        ("#x#", "\\#x#"),
        ("nul\0", "nul\\00"),
        ("zoë", "zoë"),
    ],
)
def test_escape_dn_value(value: str, escaped: str) -> None:
    assert escape_dn_value(value) == escaped


def test_escape_dn_value_refuses_empty() -> None:
    with pytest.raises(ValueError):
        escape_dn_value("")


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain-1.x@y", "plain-1.x@y"),
        ("*()\\\0", "\\2a\\28\\29\\5c\\00"),
        (" a b ", "\\20a\\20b\\20"),
        ("ë", "\\c3\\ab"),
    ],
)
def test_escape_filter_value(value: str, escaped: str) -> None:
    assert escape_filter_value(value) == escaped


# -- opening and schema discovery ------------------------------------------------------


async def test_schema_discovered_from_the_server(make_ldap: LdapFactory) -> None:
    connector = await make_ldap(object_classes=["inetOrgPerson", "ecmahostAccount"])
    schema = await connector.schema()
    assert connector.capabilities == {
        Capability.IMPORT,
        Capability.EXPORT,
        Capability.RENAME,
        Capability.ASSIGNS_ANCHOR,
    }
    assert schema.attributes[0].name == "uid" and schema.anchor.name == "uid"
    assert not schema.anchor.assigned  # uid is written: Entra's to choose
    types = {a.name: a.data_type for a in schema.attributes}
    assert {"cn", "sn", "mail", "title", "displayName", "employeeNumber", "-dn-"} <= set(types)
    assert not {"objectClass", "userPassword", "jpegPhoto", "audio", "userCertificate"} & set(types)
    assert types["ecmahostActive"] is DataType.BOOLEAN
    assert types["ecmahostLevel"] is DataType.INTEGER
    assert types["mail"] is DataType.STRING
    case_exact = {a.name: a.case_exact for a in schema.attributes}
    assert case_exact["ecmahostCode"] and not case_exact["uid"]


async def test_mapped_attributes_and_typed_values(make_ldap: LdapFactory, slapd: Slapd) -> None:
    connector = await make_ldap(
        object_classes=["inetOrgPerson", "ecmahostAccount"],
        attributes={
            "AzureObjectID": "uid",
            "Email": "rfc822Mailbox",  # an alias reaches the attribute's first name
            "DisplayName": "displayName",
            "Surname": "sn",
            "CommonName": "cn",
            "Level": "ecmahostLevel",
            "Active": "ecmahostActive",
        },
    )
    schema = await connector.schema()
    assert [a.name for a in schema.attributes][:2] == ["AzureObjectID", "Email"]
    assert schema.get("level").data_type is DataType.INTEGER  # type: ignore[union-attr]
    values: dict[str, Value] = {
        **{"Email": "a@b.org", "Surname": "S", "CommonName": "C"},
        **{"Level": 42, "Active": True},
    }
    change = Change(ChangeKind.ADD, "u1", {"AzureObjectID": "u1", **values})
    assert errors(await connector.export([change])) == [None]
    held = by_uid(slapd, connector.settings.base_dn)["u1"]
    assert (held["mail"], held["ecmahostlevel"], held["ecmahostactive"]) == (
        ["a@b.org"],
        ["42"],
        ["TRUE"],
    )
    record = (await imported(connector))["u1"]
    assert record.attributes == {
        **change.attributes,
        "-dn-": f"uid=u1,{connector.settings.base_dn}",
    }


def _mapped(**attributes: str) -> dict[str, Any]:
    return {"attributes": {"uid": "uid", **attributes}}


async def test_an_integer_anchor_is_served_as_text(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(
        object_classes=["inetOrgPerson", "ecmahostAccount"],
        anchor="ecmahostLevel",
        attributes={"Number": "ecmahostLevel", "uid": "uid", "cn": "cn", "sn": "sn"},
    )
    assert (await connector.schema()).anchor.data_type is DataType.STRING
    change = Change(ChangeKind.ADD, "42", {"Number": "42", "uid": "n42", **PERSON})
    assert errors(await connector.export([change])) == [None]
    assert by_uid(slapd, ldap_ou)["n42"]["ecmahostlevel"] == ["42"]
    assert (await imported(connector))["42"].attributes["Number"] == "42"


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"object_classes": ["noSuchClass"]}, "object_classes", "no object class"),
        (_mapped(X="noSuchAttr"), "attributes.X", "no attribute type"),
        (_mapped(N="uidNumber"), "attributes.N", "not allowed"),
        (_mapped(P="jpegPhoto"), "attributes.P", "binary"),
        (_mapped(A="mail", B="rfc822Mailbox"), "attributes.B", "already"),
        ({**_mapped(sn="sn"), "rdn_attribute": "cn"}, "rdn_attribute", "map it"),
        ({"disable": {"ldap_attribute": "noSuchAttr"}}, "disable.ldap_attribute", "no attribute"),
        ({"disable": {"ldap_attribute": "userid"}}, "anchor", "disable flag"),  # uid's alias
        (
            {**_mapped(IsActive="title"), "disable": {"ldap_attribute": "employeeType"}},
            "disable",
            "also a mapped",
        ),
    ],
)
async def test_settings_the_schema_refuses(
    make_ldap: LdapFactory, overrides: dict[str, Any], key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_ldap(**overrides)
    assert caught.value.key == f"connectors.Dir.settings.{key}"
    assert fragment in str(caught.value)


async def test_password_by_reference(
    make_ldap: LdapFactory, slapd: Slapd, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECMAHOST_TEST_LDAP_PW", slapd.password)
    await make_ldap(password="env:ECMAHOST_TEST_LDAP_PW")
    (tmp_path / "ldap.secret").write_text(slapd.password + "\n")
    connector = await make_ldap(password="file:ldap.secret")  # relative to base_dir
    await connector.validate()
    monkeypatch.delenv("ECMAHOST_TEST_LDAP_PW")
    with pytest.raises(ConfigError) as caught:
        await make_ldap(password="env:ECMAHOST_TEST_LDAP_PW")
    assert caught.value.key == "connectors.Dir.settings.password"


async def test_wrong_password_is_reported_without_the_password(
    make_ldap: LdapFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TransientError) as caught:
        await make_ldap(password="Wr0ng-Secret-Value")
    assert "invalidCredentials" in str(caught.value)
    assert "Wr0ng-Secret-Value" not in str(caught.value) + caplog.text


async def test_tls_with_ldaps_and_start_tls(make_ldap: LdapFactory, slapd: Slapd) -> None:
    for tls in ({"url": slapd.ldaps_url}, {"start_tls": True}):
        connector = await make_ldap(**tls, ca_file=str(slapd.ca_file))
        await connector.validate()
        assert errors(await connector.export([add(f"tls{len(tls)}")])) == [None]
    # A certificate nobody said to trust: the server cannot be used, for now.
    with pytest.raises(TransientError, match="certificate verify failed"):
        await make_ldap(url=slapd.ldaps_url)
    with pytest.raises(ConfigError) as caught:
        await make_ldap(url=slapd.ldaps_url, ca_file="missing.pem")
    assert caught.value.key == "connectors.Dir.settings.ca_file"


async def test_validate_checks_base_and_container(make_ldap: LdapFactory, ldap_ou: str) -> None:
    await (await make_ldap()).validate()
    missing = await make_ldap(container=f"ou=missing,{ldap_ou}")
    with pytest.raises(PermanentError, match="noSuchObject"):
        await missing.validate()


# -- full import -----------------------------------------------------------------------


def _pages(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [
        r.entries  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "action", None) == "ldap.import.page"
    ]


async def test_import_pages_and_streams(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ecmahost.connectors.ldap.connector")
    slapd.add_people(ldap_ou, 50)
    connector = await make_ldap(page_size=7)
    stream = connector.full_import()
    first = await anext(stream)
    assert first.anchor.startswith("bulk")
    assert len(_pages(caplog)) == 1  # one page fetched: the records stream as pages arrive
    await stream.aclose()  # type: ignore[attr-defined] # an async generator
    caplog.clear()
    records = await imported(connector)
    assert len(records) == 50 and _pages(caplog) == [7] * 7 + [1]
    assert records["bulk3"].attributes == {
        "uid": "bulk3",
        "cn": "Bulk User 3",
        "sn": "User3",
        "mail": "bulk3@example.org",
        "-dn-": f"uid=bulk3,{ldap_ou}",
    }


async def test_ten_thousand_entries_one_page_at_a_time(
    slapd: Slapd, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    caplog.set_level(logging.DEBUG, logger="ecmahost.connectors.ldap.connector")
    settings = LdapSettings.model_validate(
        {
            "url": slapd.url,
            "bind_dn": slapd.bind_dn,
            "password": slapd.password,
            "base_dn": slapd.populated_ou(10_000),
            "page_size": 500,
        }
    )
    connector = LdapConnector("Bulk", settings, tmp_path)
    await connector.open()
    try:
        seen, most_ahead = 0, 0
        async for _ in connector.full_import():
            seen += 1
            # Records fetched but not yet consumed never exceed one page.
            most_ahead = max(most_ahead, sum(_pages(caplog)) - seen)
    finally:
        await connector.close()
    assert seen == 10_000
    assert _pages(caplog) == [500] * 20
    assert most_ahead < 500


async def test_entries_without_an_anchor_are_skipped(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str, caplog: pytest.LogCaptureFixture
) -> None:
    slapd.ldapadd(f"dn: cn=Nobody,{ldap_ou}\nobjectClass: inetOrgPerson\ncn: Nobody\nsn: N\n")
    slapd.add_people(ldap_ou, 2)
    records = await imported(await make_ldap())
    assert sorted(records) == ["bulk0", "bulk1"]
    assert "1 entries have no uid" in caplog.text


# -- export ----------------------------------------------------------------------------


async def test_add_replace_delete_read_back(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap()
    results = await connector.export(
        [add("adele", title="Retail Manager", mail="adele@contoso.org"), add("bob")]
    )
    assert results == [Result("adele"), Result("bob")]
    held = by_uid(slapd, ldap_ou)
    assert held["adele"]["title"] == ["Retail Manager"]
    assert held["adele"]["dn"] == [f"uid=adele,{ldap_ou}"]
    assert held["adele"]["objectclass"] == ["inetOrgPerson"]

    # Title changes, mail goes away, description appears.
    assert errors(
        await connector.export([replace("adele", title="Store Manager", description="new")])
    ) == [None]
    held = by_uid(slapd, ldap_ou)
    assert held["adele"]["title"] == ["Store Manager"]
    assert held["adele"]["description"] == ["new"]
    assert "mail" not in held["adele"]

    assert errors(await connector.export([delete("bob")])) == [None]
    assert sorted(by_uid(slapd, ldap_ou)) == ["adele"]


def _csn(slapd: Slapd, dn: str) -> str:
    connection = slapd.connection()
    try:
        connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryCSN"])
        return str(connection.response[0]["raw_attributes"]["entryCSN"][0])
    finally:
        connection.unbind()


async def test_only_changed_attributes_are_written(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap()
    dn = f"uid=multi,{ldap_ou}"
    slapd.ldapadd(
        f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: multi\ncn: Multi\nsn: M\n"
        "mail: first@example.org\nmail: second@example.org\n"
    )
    record = (await imported(connector))["multi"]
    assert record.attributes["mail"] == "first@example.org"  # the first value is served
    before = _csn(slapd, dn)
    assert errors(await connector.export([replace("multi", **record.attributes)])) == [None]
    assert _csn(slapd, dn) == before  # nothing differed: nothing was written

    # Another attribute changes: the second mail value, unknown to ecmahost, stays.
    changed = {**record.attributes, "title": "Boss"}
    assert errors(await connector.export([replace("multi", **changed)])) == [None]
    held = by_uid(slapd, ldap_ou)["multi"]
    assert held["mail"] == ["first@example.org", "second@example.org"]
    # A new mail replaces the values: the attribute then holds exactly one.
    changed["mail"] = "third@example.org"
    assert errors(await connector.export([replace("multi", **changed)])) == [None]
    assert by_uid(slapd, ldap_ou)["multi"]["mail"] == ["third@example.org"]


async def test_hostile_values_round_trip(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap()
    changes = [
        add(value, cn=value, sn=value, displayName=value, description=f"{value}\nline 2")
        for value in HOSTILE
    ]
    assert errors(await connector.export(changes)) == [None] * len(HOSTILE)

    held = by_uid(slapd, ldap_ou)
    assert sorted(held) == sorted(HOSTILE)
    for value in HOSTILE:
        assert held[value]["cn"] == [value] and held[value]["displayname"] == [value]
        assert held[value]["description"] == [f"{value}\nline 2"]
        assert entries(slapd, f"uid={escape_dn_value(value)},{ldap_ou}"), value

    records = await imported(connector)
    assert sorted(records) == sorted(HOSTILE)
    assert all(records[v].attributes["sn"] == v for v in HOSTILE)

    # Found again by anchor: through the search filter, each exactly.
    updates = [replace(value, cn=value, sn=value, title=f"t{i}") for i, value in enumerate(HOSTILE)]
    assert errors(await connector.export(updates)) == [None] * len(HOSTILE)
    held = by_uid(slapd, ldap_ou)
    assert [held[v]["title"] for v in HOSTILE] == [[f"t{i}"] for i in range(len(HOSTILE))]
    assert errors(await connector.export([delete(v) for v in HOSTILE])) == [None] * len(HOSTILE)
    assert by_uid(slapd, ldap_ou) == {}


async def test_rejected_change_does_not_fail_the_batch(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap()
    no_surname = Change(ChangeKind.ADD, "nosn", {"uid": "nosn", "cn": "No Surname"})
    unknown = Change(ChangeKind.ADD, "unk", {"uid": "unk", **PERSON, "Nickname": "x"})
    wrong_anchor = Change(ChangeKind.ADD, "one", {"uid": "other", **PERSON})
    results = await connector.export([add("ok1"), no_surname, unknown, wrong_anchor, add("ok2")])
    assert [r.anchor for r in results] == ["ok1", "nosn", "unk", "one", "ok2"]
    ok1, missing, bad, mismatch, ok2 = errors(results)
    assert ok1 is None and ok2 is None
    assert isinstance(missing, PermanentError) and not isinstance(missing, ConflictError)
    assert "objectClassViolation" in str(missing) and "'sn'" in str(missing)  # the server's text
    assert isinstance(bad, PermanentError) and "Nickname" in str(bad)
    assert isinstance(mismatch, PermanentError)
    assert sorted(by_uid(slapd, ldap_ou)) == ["ok1", "ok2"]


async def test_referral_is_a_permanent_error(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    slapd.ldapadd(
        f"dn: ou=moved,{ldap_ou}\nobjectClass: referral\nobjectClass: extensibleObject\n"
        "ou: moved\nref: ldap://elsewhere.example/ou=moved,dc=example,dc=org\n"
    )
    connector = await make_ldap(container=f"ou=moved,{ldap_ou}")
    [referred] = errors(await connector.export([add("away")]))
    assert isinstance(referred, PermanentError) and "referral" in str(referred)


async def test_conflicts(make_ldap: LdapFactory, slapd: Slapd) -> None:
    # Two anchors whose entries would have the same DN.
    by_number = await make_ldap(
        anchor="employeeNumber",
        rdn_attribute="cn",
        attributes={"Id": "employeeNumber", "cn": "cn", "sn": "sn"},
    )
    first, second = (
        Change(ChangeKind.ADD, n, {"Id": n, "cn": "Same Name", "sn": "S"}) for n in ("1", "2")
    )
    assert errors(await by_number.export([first])) == [None]
    [taken] = errors(await by_number.export([second]))
    assert isinstance(taken, ConflictError) and "entryAlreadyExists" in str(taken)

    # The unique overlay: mail must be unique under ou=unique.
    unique = await make_ldap(base_dn=slapd.new_ou(UNIQUE_OU))
    assert errors(await unique.export([add("u1", mail="same@example.org")])) == [None]
    [duplicate] = errors(await unique.export([add("u2", mail="same@example.org")]))
    assert isinstance(duplicate, ConflictError) and "unique" in str(duplicate)


async def test_anchor_differing_only_in_case_is_a_conflict(make_ldap: LdapFactory) -> None:
    connector = await make_ldap()
    assert errors(await connector.export([add("Case")])) == [None]
    [clash] = errors(await connector.export([add("CASE")]))
    assert isinstance(clash, ConflictError) and "uid='CASE' is taken" in str(clash)
    assert errors(await connector.export([delete("CASE")])) == [None]  # not that one's
    assert sorted(await imported(connector)) == ["Case"]


async def test_rdn_change_renames_the_entry(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(
        anchor="employeeNumber",
        rdn_attribute="cn",
        attributes={"Id": "employeeNumber", "Name": "cn", "sn": "sn", "title": "title"},
    )
    created = Change(ChangeKind.ADD, "7", {"Id": "7", "Name": "Old, Name", "sn": "S"})
    renamed = Change(
        ChangeKind.REPLACE, "7", {"Id": "7", "Name": "New + Name", "sn": "S", "title": "T"}
    )
    assert errors(await connector.export([created])) == [None]
    assert errors(await connector.export([renamed])) == [None]
    [(dn, held)] = entries(slapd, ldap_ou).items()
    assert (held["cn"], held["title"]) == (["New + Name"], ["T"])
    assert list(entries(slapd, f"cn={escape_dn_value('New + Name')},{ldap_ou}")) == [dn]
    assert (await imported(connector))["7"].attributes["-dn-"] == dn


async def test_dn_given_on_add(make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str) -> None:
    connector = await make_ldap()
    inner = slapd.new_ou(ldap_ou)
    assert errors(await connector.export([add("placed", **{"-dn-": f"uid=placed,{inner}"})])) == [
        None
    ]
    assert list(entries(slapd, ldap_ou)) == [f"uid=placed,{inner}"]
    [outside] = errors(
        await connector.export([add("out", **{"-dn-": "uid=out,dc=example,dc=org"})])
    )
    assert isinstance(outside, PermanentError) and "below base_dn" in str(outside)


@pytest.mark.parametrize(
    ("disable", "classes", "held", "read"),
    [
        (  # without an enabled value: enabling removes the attribute
            {"ldap_attribute": "employeeType", "disabled_value": "Disabled"},
            ["inetOrgPerson"],
            {True: None, False: ["Disabled"], None: None},
            {True: True, False: False, None: True},
        ),
        (  # a Boolean attribute
            BOOLEAN_FLAG,
            ["inetOrgPerson", "ecmahostAccount"],
            {True: ["TRUE"], False: ["FALSE"], None: None},
            {True: True, False: False, None: None},
        ),
        (  # OpenLDAP's password policy lock: an operational attribute
            {"ldap_attribute": "pwdAccountLockedTime", "disabled_value": "000001010000Z"},
            ["inetOrgPerson"],
            {True: None, False: ["000001010000Z"], None: None},
            {True: True, False: False, None: True},
        ),
    ],
)
async def test_disable_flag(
    make_ldap: LdapFactory,
    slapd: Slapd,
    ldap_ou: str,
    disable: dict[str, str],
    classes: list[str],
    held: dict[bool | None, list[str] | None],
    read: dict[bool | None, bool | None],
) -> None:
    connector = await make_ldap(disable=disable, object_classes=classes)
    schema = await connector.schema()
    flag = disable["ldap_attribute"].lower()
    assert schema.get("IsActive").data_type is DataType.BOOLEAN  # type: ignore[union-attr]
    assert flag not in {a.name.lower() for a in schema.attributes}
    for active in (True, False, None, False, True):
        given = {} if active is None else {"IsActive": active}
        assert errors(await connector.export([add("flag", **given)])) == [None]
        assert by_uid(slapd, ldap_ou)["flag"].get(flag) == held[active]
        assert (await imported(connector))["flag"].attributes.get("IsActive") is read[active]
    [refused] = errors(await connector.export([add("flag", IsActive="no")]))
    assert isinstance(refused, PermanentError) and "Boolean" in str(refused)


async def test_disable_values_compare_without_case(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(
        disable={"ldap_attribute": "employeeType", "disabled_value": "Disabled"}
    )
    slapd.ldapadd(
        f"dn: uid=shouty,{ldap_ou}\nobjectClass: inetOrgPerson\nuid: shouty\ncn: S\nsn: S\n"
        "employeeType: Contractor\nemployeeType: DISABLED\n"
    )
    assert (await imported(connector))["shouty"].attributes["IsActive"] is False


# -- outages ---------------------------------------------------------------------------


async def test_server_down_is_transient_then_recovers(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap()
    assert errors(await connector.export([add("before")])) == [None]
    with slapd.stopped():
        results = await connector.export([add("a"), add("b"), delete("before")])
        assert all(isinstance(e, TransientError) for e in errors(results))
        assert "cannot be reached" in str(results[0].error)
        assert "not attempted" in str(results[1].error)
        with pytest.raises(TransientError):
            await imported(connector)
    # The same connector reconnects on its own.
    assert errors(await connector.export([add("a"), add("b")])) == [None, None]
    assert sorted(by_uid(slapd, ldap_ou)) == ["a", "b", "before"]


async def test_unresponsive_server_times_out_without_blocking_the_loop(
    make_ldap: LdapFactory, slapd: Slapd, ldap_ou: str
) -> None:
    connector = await make_ldap(timeout_s=1)
    assert errors(await connector.export([add("warm")])) == [None]  # connected
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    with slapd.paused():
        results = await connector.export([add("late"), add("later")])
    elapsed_s = time.monotonic() - started
    ticker.cancel()
    assert all(isinstance(e, TransientError) for e in errors(results))
    assert elapsed_s < 5
    assert ticks >= elapsed_s / 0.02 / 3  # the loop kept running while ldap3 waited
    # The delayed request may still land once the server resumes; a retry is harmless.
    assert errors(await connector.export([add("late"), add("later")])) == [None, None]
    assert sorted(by_uid(slapd, ldap_ou)) == ["late", "later", "warm"]
