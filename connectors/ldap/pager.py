"""The paged search of a full import (the simple paged results control, RFC 2696):
one page at a time, from a worker thread."""

from __future__ import annotations

import logging
from typing import Any

from ecmahost.connectors.base import Record
from ecmahost.connectors.ldap.driver import ldap3
from ecmahost.connectors.ldap.entry import Entry, entry_values, record
from ecmahost.connectors.ldap.errors import check_result
from ecmahost.connectors.ldap.schema import Layout
from ecmahost.connectors.ldap.session import LdapSession
from ecmahost.connectors.ldap.settings import LdapSettings

__all__ = ["PAGED_RESULTS", "Pager", "response_entries"]

# The connector's logger: a full import logs as the connector, as it did inline.
log = logging.getLogger("ecmahost.connectors.ldap.connector")

PAGED_RESULTS = "1.2.840.113556.1.4.319"


class Pager:
    """The paged search of one full import, page by page, from a worker thread."""

    def __init__(
        self, session: LdapSession, layout: Layout, settings: LdapSettings, name: str
    ) -> None:
        self._session = session
        self._layout = layout
        self._settings = settings
        self._name = name
        self._cookie: bytes | None = None
        self._pages = 0
        self._skipped = 0
        self.done = False

    def next_page(self) -> list[Record]:
        """The next page's records; sets ``done`` after the last page."""
        entries = self._session.run(f"search {self._settings.base_dn}", self._search)
        self._pages += 1
        records = [r for r in (record(self._layout, e) for e in entries) if r is not None]
        self._skipped += len(entries) - len(records)
        log.debug(
            "%s: import page %d holds %d entries",
            self._name,
            self._pages,
            len(entries),
            extra={"action": "ldap.import.page", "connector": self._name, "entries": len(entries)},
        )
        if self.done and self._skipped:
            log.warning(
                "%s: %d entries have no %s and were not imported",
                self._name,
                self._skipped,
                self._layout.anchor.ldap_name,
                extra={"action": "ldap.import.no_anchor", "connector": self._name},
            )
        return records

    def close(self) -> None:
        self._session.close()  # also ends an unfinished paged search on the server

    def _search(self, connection: ldap3.Connection) -> list[Entry]:
        connection.search(
            self._settings.base_dn,
            self._layout.class_filter,
            ldap3.SUBTREE,
            attributes=self._layout.requested,
            paged_size=self._settings.page_size,
            paged_cookie=self._cookie,
            # A server that cannot page must refuse, not answer with every entry at once.
            paged_criticality=True,
        )
        check_result(connection.result, f"search {self._settings.base_dn}")
        control = (connection.result.get("controls") or {}).get(PAGED_RESULTS, {})
        self._cookie = control.get("value", {}).get("cookie") or None
        self.done = self._cookie is None
        return response_entries(connection.response)


def response_entries(response: list[dict[str, Any]] | None) -> list[Entry]:
    """The entries of an ldap3 search response, values as text."""
    return [
        Entry(item["dn"], entry_values(item.get("raw_attributes") or {}))
        for item in response or []
        if item.get("type") == "searchResEntry"
    ]
