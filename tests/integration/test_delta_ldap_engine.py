"""Delta imports of the LDAP connector through the host, against a real slapd with
the accesslog overlay: after a full import, the changes made directly in the
directory are read from the log and the view matches the directory; a new host on
the same state folder starts from the stored watermark."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ecmahost.connectors.ldap.driver import ldap3
from ecmahost.engine.config import load_config
from ecmahost.engine.host import Host
from ecmahost.engine.workers.importer import ImportReport

from tests.conftest import TOKEN
from tests.connectors.ldap.test_delta import person
from tests.ldap_server import Slapd, slapd_accesslog_fixture

__all__ = ["slapd_accesslog_fixture"]

PEOPLE = 500
PASSWORD_VARIABLE = "ECMAHOST_TEST_DELTA_LDAP_PASSWORD"


def ldap_toml(slapd: Slapd, base: str) -> str:
    os.environ[PASSWORD_VARIABLE] = slapd.password
    return f"""
[connectors.Dir]
type = "ldap"
token = "{TOKEN}"
autosync_minutes = 0

[connectors.Dir.settings]
url = "{slapd.url}"
bind_dn = "{slapd.bind_dn}"
password = "env:{PASSWORD_VARIABLE}"
base_dn = "{base}"

[connectors.Dir.settings.delta]
source = "accesslog"
"""


def directory(slapd: Slapd, base: str) -> set[str]:
    connection = slapd.connection()
    try:
        connection.search(base, "(objectClass=inetOrgPerson)", attributes=["uid"])
        return {str(entry.uid) for entry in connection.entries}
    finally:
        connection.unbind()


async def view(host: Host) -> set[str]:
    assert host.space is not None
    return {o.anchor async for o in host.space.iter_objects("Dir")}


async def delta(host: Host) -> ImportReport:
    deltas = host.runtime("Dir").importer.deltas
    assert deltas is not None
    return await deltas.run()


async def test_an_ldap_delta_through_the_host_reads_the_log_since_the_watermark(
    slapd_accesslog: Slapd, write_config: Callable[[str], Path]
) -> None:
    base = slapd_accesslog.new_ou()
    slapd_accesslog.add_people(base, PEOPLE)
    config = write_config(ldap_toml(slapd_accesslog, base))
    host = Host(load_config(config))
    await host.open()
    try:
        full = await host.runtime("Dir").importer.full_import()
        assert full.ok and full.seen == PEOPLE
        connection = slapd_accesslog.connection()
        for i in range(100):
            connection.modify(f"uid=bulk{i},{base}", {"sn": [(ldap3.MODIFY_REPLACE, ["X"])]})
        for i in range(20):
            connection.add(f"uid=new{i},{base}", attributes=person(f"new{i}"))
        for i in range(200, 210):
            connection.delete(f"uid=bulk{i},{base}")
        connection.unbind()
        report = await delta(host)
        assert report.ok
        # The 130 changes, and at most the write at the stored watermark again.
        assert 130 <= report.counts["read"] <= 131
        assert report.counts["removed"] == 10
        assert await view(host) == directory(slapd_accesslog, base)
    finally:
        await host.close()

    connection = slapd_accesslog.connection()
    connection.modify(f"uid=bulk300,{base}", {"sn": [(ldap3.MODIFY_REPLACE, ["Y"])]})
    connection.unbind()
    host = Host(load_config(config))  # a restart: the watermark comes from the space
    await host.open()
    try:
        report = await delta(host)
        assert report.ok and 1 <= report.counts["read"] <= 2
        assert await view(host) == directory(slapd_accesslog, base)
    finally:
        await host.close()
