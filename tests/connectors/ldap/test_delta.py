"""Delta imports of the LDAP connector against a real slapd with the accesslog
overlay: after a full import, the changes made directly in the directory (modifies,
adds, deletes, renames) are read from the log, and nothing else: not the failed
writes, not the writes outside the connector's base DN; a watermark the log no
longer covers is refused."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ecmahost.connectors.base import Capability, Delta
from ecmahost.connectors.exceptions import WatermarkExpiredError
from ecmahost.connectors.ldap.connector import LdapConnector, LdapSettings
from ecmahost.connectors.ldap.driver import LDAPException, ldap3

from tests.connectors.ldap.ldap_fixtures import imported
from tests.ldap_server import ACCESSLOG, Slapd, slapd_accesslog_fixture  # noqa: F401 - fixture

Factory = Callable[..., Awaitable[LdapConnector]]

PEOPLE = 2_000
MODIFIED = range(0, 600)
DELETED = range(1_000, 1_150)
RENAMED = range(1_500, 1_550)
ADDED = 200


@pytest.fixture(name="log_ou")
def log_ou_fixture(slapd_accesslog: Slapd) -> Iterator[str]:
    dn = slapd_accesslog.new_ou()
    yield dn
    if slapd_accesslog.process is not None:
        slapd_accesslog.remove_tree(dn)


@pytest.fixture(name="make_delta")
async def make_delta_fixture(
    slapd_accesslog: Slapd, log_ou: str, tmp_path: Path
) -> AsyncIterator[Factory]:
    """Factory: an open connector over ``log_ou`` reading the accesslog."""
    opened: list[LdapConnector] = []

    async def make(**overrides: Any) -> LdapConnector:
        settings = LdapSettings.model_validate(
            {
                "url": slapd_accesslog.url,
                "bind_dn": slapd_accesslog.bind_dn,
                "password": slapd_accesslog.password,
                "base_dn": log_ou,
                "delta": {"source": "accesslog"},
                **overrides,
            }
        )
        connector = LdapConnector("Dir", settings, tmp_path)
        opened.append(connector)
        await connector.open()
        return connector

    yield make
    for connector in opened:
        await connector.close()


async def read_delta(connector: LdapConnector, watermark: str) -> list[Delta]:
    return [delta async for delta in connector.delta_import(watermark)]


def person(uid: str) -> dict[str, Any]:
    return {"objectClass": ["inetOrgPerson"], "uid": uid, "cn": f"New {uid}", "sn": "New"}


def make_changes(slapd: Slapd, base: str, outside: str) -> int:
    """1,000 changes under ``base``, plus writes that must not count: a failed modify
    of an entry inside, an add and a modify outside. Returns the changes made."""
    connection = slapd.connection()
    try:
        for i in MODIFIED:
            connection.modify(
                f"uid=bulk{i},{base}", {"sn": [(ldap3.MODIFY_REPLACE, [f"Changed{i}"])]}
            )
        for i in range(ADDED):
            connection.add(f"uid=new{i},{base}", attributes=person(f"new{i}"))
        for i in DELETED:
            connection.delete(f"uid=bulk{i},{base}")
        for i in RENAMED:
            connection.modify_dn(f"uid=bulk{i},{base}", f"uid=renamed{i}", delete_old_dn=True)
        with pytest.raises(LDAPException):  # logged with reqResult 65: changed nothing
            connection.modify(
                f"uid=bulk1999,{base}", {"ecmahostLevel": [(ldap3.MODIFY_REPLACE, ["1"])]}
            )
        connection.add(f"uid=elsewhere,{outside}", attributes=person("elsewhere"))
        connection.modify(f"uid=elsewhere,{outside}", {"sn": [(ldap3.MODIFY_REPLACE, ["X"])]})
    finally:
        connection.unbind()
    return len(MODIFIED) + ADDED + len(DELETED) + len(RENAMED)


async def test_delta_import_reads_only_the_changes_made_since_the_full_import(
    slapd_accesslog: Slapd, log_ou: str, make_delta: Factory
) -> None:
    slapd_accesslog.add_people(log_ou, PEOPLE)
    outside = slapd_accesslog.new_ou()
    connector = await make_delta()
    assert Capability.DELTA_IMPORT in connector.capabilities

    watermark = await connector.watermark()
    started = time.perf_counter()
    assert len(await imported(connector)) == PEOPLE
    full_s = time.perf_counter() - started

    changes = make_changes(slapd_accesslog, log_ou, outside)
    started = time.perf_counter()
    deltas = await read_delta(connector, watermark)
    delta_s = time.perf_counter() - started
    print(
        f"\nfull import: {PEOPLE} entries read in {full_s:.2f} s; delta import after "
        f"{changes} changes: {len(deltas)} changes read in {delta_s:.2f} s"
    )

    records = {d.anchor: d.record for d in deltas if d.record is not None}
    deleted = [d.anchor for d in deltas if d.record is None]
    modified = {f"bulk{i}" for i in MODIFIED}
    added = {f"new{i}" for i in range(ADDED)}
    renamed = {f"renamed{i}" for i in RENAMED}
    assert set(records) == modified | added | renamed
    assert sorted(deleted) == sorted({f"bulk{i}" for i in (*DELETED, *RENAMED)})
    # One Delta per change, two per rename (the old uid goes, the new one comes).
    assert len(deltas) == changes + len(RENAMED)
    assert records["bulk7"].attributes["sn"] == "Changed7"
    assert records["renamed1500"].attributes["-dn-"] == f"uid=renamed1500,{log_ou}"
    marks = [d.watermark for d in deltas]
    assert marks == sorted(marks) and marks[0] >= watermark

    # From the last watermark on, only the change at it (a rename) is read again.
    again = await read_delta(connector, marks[-1])
    assert [d.anchor for d in again] == [d.anchor for d in deltas if d.watermark == marks[-1]]
    assert [d.anchor for d in again] == ["bulk1549", "renamed1549"]


async def test_delta_import_reads_an_entry_once_with_its_latest_values(
    slapd_accesslog: Slapd, log_ou: str, make_delta: Factory
) -> None:
    slapd_accesslog.add_people(log_ou, 3)
    connector = await make_delta()
    watermark = await connector.watermark()
    connection = slapd_accesslog.connection()
    try:
        for value in ("A", "B", "C"):
            connection.modify(f"uid=bulk0,{log_ou}", {"sn": [(ldap3.MODIFY_REPLACE, [value])]})
        connection.modify(f"uid=bulk1,{log_ou}", {"sn": [(ldap3.MODIFY_REPLACE, ["D"])]})
        connection.delete(f"uid=bulk1,{log_ou}")
        connection.add(f"uid=bulk1,{log_ou}", attributes=person("bulk1"))
    finally:
        connection.unbind()

    deltas = await read_delta(connector, watermark)

    assert [(d.anchor, d.record is not None) for d in deltas] == [
        ("bulk2", True),  # the write at the watermark (its last add), read again
        ("bulk0", True),
        ("bulk1", True),  # read at its modify: already the entry added again
        ("bulk1", False),
        ("bulk1", True),  # deleted, then added again: applied in order, it exists
    ]
    assert deltas[1].record is not None and deltas[1].record.attributes["sn"] == "C"


async def test_delta_import_with_the_dn_as_anchor_follows_renames_and_moves(
    slapd_accesslog: Slapd, log_ou: str, make_delta: Factory
) -> None:
    slapd_accesslog.add_people(log_ou, 3)
    outside = slapd_accesslog.new_ou()
    connector = await make_delta(anchor="-dn-")
    watermark = await connector.watermark()
    connection = slapd_accesslog.connection()
    try:
        connection.modify_dn(f"uid=bulk0,{log_ou}", "uid=moved0", delete_old_dn=True)
        connection.modify_dn(f"uid=bulk1,{log_ou}", "uid=bulk1", new_superior=outside)
        connection.delete(f"uid=bulk2,{log_ou}")
    finally:
        connection.unbind()

    deltas = await read_delta(connector, watermark)

    assert [(d.anchor.lower(), d.record is not None) for d in deltas] == [
        (f"uid=bulk0,{log_ou}", False),
        (f"uid=moved0,{log_ou}", True),
        (f"uid=bulk1,{log_ou}", False),  # moved out of the base: gone from the view
        (f"uid=bulk2,{log_ou}", False),
    ]


async def test_delta_import_deletes_by_entry_uuid_from_the_log(
    slapd_accesslog: Slapd, log_ou: str, make_delta: Factory
) -> None:
    slapd_accesslog.add_people(log_ou, 3)
    outside = slapd_accesslog.new_ou()
    connector = await make_delta(anchor="entryUUID")
    before = {r.attributes["uid"]: anchor for anchor, r in (await imported(connector)).items()}
    watermark = await connector.watermark()
    connection = slapd_accesslog.connection()
    try:
        connection.delete(f"uid=bulk0,{log_ou}")
        connection.modify_dn(f"uid=bulk1,{log_ou}", "uid=bulk1", new_superior=outside)
    finally:
        connection.unbind()

    deltas = await read_delta(connector, watermark)

    # The write at the watermark (a unit added elsewhere) is no change here; the
    # delete comes by the logged entryUUID, the move out by the moved entry's.
    assert [(d.anchor, d.record) for d in deltas] == [
        (before["bulk0"], None),
        (before["bulk1"], None),
    ]


async def test_delta_import_refuses_a_watermark_the_log_no_longer_covers(
    slapd_accesslog: Slapd, log_ou: str, make_delta: Factory
) -> None:
    slapd_accesslog.add_people(log_ou, 2)
    connector = await make_delta()
    watermark = await connector.watermark()

    with pytest.raises(WatermarkExpiredError):
        await read_delta(connector, "20000101000000Z")  # before the oldest entry
    with pytest.raises(WatermarkExpiredError):
        await read_delta(connector, "not a time")
    assert await read_delta(connector, watermark)  # the entry at the watermark, read again

    # The log purged up to after the watermark (as olcAccessLogPurge does): the
    # changes since may be gone with it.
    connection = slapd_accesslog.connection()
    try:
        connection.modify(f"uid=bulk0,{log_ou}", {"sn": [(ldap3.MODIFY_REPLACE, ["Later"])]})
        connection.search(ACCESSLOG, f"(reqStart<={watermark})", ldap3.LEVEL, attributes=["1.1"])
        for item in list(connection.response):
            connection.delete(item["dn"])
    finally:
        connection.unbind()
    with pytest.raises(WatermarkExpiredError):
        await read_delta(connector, watermark)


async def test_delta_capability_only_with_delta_settings(make_delta: Factory) -> None:
    assert Capability.DELTA_IMPORT not in (await make_delta(delta=None)).capabilities
    assert Capability.DELTA_IMPORT not in LdapConnector.capabilities
