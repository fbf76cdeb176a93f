"""Delta imports of the LDAP connector: the writes a change log lists since a
watermark, turned into the current state of each entry they touched.

A log entry says which entry changed, not always how it looks now (a later write
may have changed it again, or removed it): so each changed entry still in scope is
read from the directory and imported as it is, and a log entry whose entry is gone
from the scope (deleted, renamed or moved away, no longer of the served classes)
becomes a delete of the anchor it had. Writes outside ``base_dn`` and failed
writes are passed over.

An entry changed many times is read once per delta, when its first change is met,
unless it changed again after the delta started (then again, as the log lists it).
The log is paged like a full import: one page in memory at a time.

With ``source = "usn"`` (AD LDS) there is no log: the entries whose ``uSNChanged``
is at or above the watermark are read; deletes reach the host with the next full
import (a tombstone no longer holds the values of an anchor).

All of it runs in worker threads, through ``LdapSession``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ecmahost.connectors.base import Delta, Record
from ecmahost.connectors.exceptions import ConfigError, WatermarkExpiredError
from ecmahost.connectors.ldap import changelog as log_rules
from ecmahost.connectors.ldap.changelog import LogChange
from ecmahost.connectors.ldap.dn import parse_dn
from ecmahost.connectors.ldap.driver import LDAPNoSuchObjectResult, ldap3
from ecmahost.connectors.ldap.entry import Entry, record
from ecmahost.connectors.ldap.errors import check_result
from ecmahost.connectors.ldap.escape import escape_filter_value
from ecmahost.connectors.ldap.pager import PAGED_RESULTS, response_entries
from ecmahost.connectors.ldap.schema import Layout
from ecmahost.connectors.ldap.session import LdapSession
from ecmahost.connectors.ldap.settings import LdapDelta, LdapSettings, dn_within

__all__ = ["DeltaReader"]

log = logging.getLogger(__name__)

_NO_SUCH_OBJECT = 32
_NEWEST_WINDOWS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(hours=6),
    timedelta(days=7),
    None,
)
"""How far back the newest reqStart is looked for, widening until one is found: a
window never wrongly misses the newest (it holds the newest of what it finds), so
clocks apart only cost a wider search."""
_ACCESSLOG_READ = [
    "reqStart",
    "reqType",
    "reqDN",
    "reqResult",
    "reqOld",
    "reqEntryUUID",
    "reqNewDN",
    "reqNewRDN",
    "reqNewSuperior",
]
"""What a delta reads of an accesslog entry (not ``reqMod``, an add's every value)."""
_FETCH_CHUNK = 200
"""Changed entries read per search."""
_SEEN_LIMIT = 100_000
"""Entries remembered as read in one delta; beyond, they may be read again."""


class DeltaReader:
    """One delta import, or one watermark, over the connector's layout.

    ``log_session`` is a connection of its own (the paging cookie belongs to it);
    ``reads`` reads the changed entries."""

    def __init__(
        self,
        log_session: LdapSession,
        reads: LdapSession,
        layout: Layout,
        settings: LdapSettings,
        key: str,
    ) -> None:
        assert settings.delta is not None, "only made for delta settings"
        self._key = key
        self._log = log_session
        self._reads = reads
        self._layout = layout
        self._settings = settings
        self._delta: LdapDelta = settings.delta
        self._seen: set[tuple[tuple[str, str], ...]] = set()
        self._fetched: dict[tuple[tuple[str, str], ...], Entry] = {}
        self._cutoff: str = ""
        self._reached: str = ""
        self._cookie: bytes | None = None
        self.done = False

    def close(self) -> None:
        self._log.close()  # also ends an unfinished paged search on the server

    # -- the watermark -------------------------------------------------------------

    def watermark(self) -> str:
        """Where the target is now (see ``Connector.watermark``)."""
        source = self._delta.source
        if source == "accesslog":
            return self._newest_request() or log_rules.generalized_now()
        if source == "changelog":
            return self._root_dse("lastchangenumber") or "0"
        highest = self._root_dse("highestCommittedUSN")
        if highest is None:
            raise ConfigError(
                f"{self._settings.url} publishes no highestCommittedUSN (an AD LDS value)",
                f"{self._key}.delta.source",
            )
        return highest

    def start(self, watermark: str) -> None:
        """Check that the log still holds every change since ``watermark``, and note
        where it ends now; ``WatermarkExpiredError`` when it does not."""
        source = self._delta.source
        if source == "accesslog":
            covered = log_rules.is_generalized_time(watermark) and self._any_log_entry(
                log_rules.accesslog_covers_filter(watermark)
            )
            self._cutoff = self._newest_request() or ""
        elif source == "changelog":
            first, last = self._root_dse("firstchangenumber"), self._root_dse("lastchangenumber")
            covered = log_rules.changelog_covers(first, last, watermark)
            self._cutoff = last or "0"
        else:
            self._cutoff = self._root_dse("highestCommittedUSN") or ""
            covered = log_rules.usn_covers(self._cutoff or None, watermark)
        if not covered:
            raise WatermarkExpiredError(
                f"the {source} no longer holds every change since {watermark!r}: "
                "a full import is needed"
            )
        self._reached = watermark

    # -- the changes ---------------------------------------------------------------

    def next_page(self, watermark: str) -> list[Delta]:
        """The Deltas of the next page of changes; sets ``done`` after the last."""
        if self._delta.source == "usn":
            return self._usn_page(watermark)
        since = (
            log_rules.accesslog_since_filter(watermark)
            if self._delta.source == "accesslog"
            else log_rules.changelog_since_filter(watermark)
        )
        wanted = _ACCESSLOG_READ if self._delta.source == "accesslog" else ["*"]
        found = self._page(self._log, self._delta.base, ldap3.LEVEL, since, wanted)
        parse = (
            log_rules.accesslog_change
            if self._delta.source == "accesslog"
            else log_rules.changelog_change
        )
        changes = [c for c in (parse(entry.values) for entry in found) if c is not None]
        changes.sort(key=lambda c: self._order(c.position))
        self._fetched = self._fetch_served(changes)
        deltas: list[Delta] = []
        for change in changes:
            deltas.extend(self._deltas(change))
        return deltas

    def _deltas(self, change: LogChange) -> Iterator[Delta]:
        """What one logged write means for the served entries, as Deltas."""
        if self._order(change.position) > self._order(self._reached or change.position):
            self._reached = change.position
        mark = self._reached or change.position
        gone_from = change.dn if change.kind in ("delete", "modrdn") else None
        if gone_from is not None and self._in_scope(gone_from):
            self._seen.discard(_key(gone_from))  # a new entry there is read afresh
            if change.kind == "delete" or self._layout.dn_anchor:
                anchor = self._old_anchor(change)
                if anchor is not None:
                    yield Delta(anchor, None, mark)
                else:
                    _warn_no_anchor(self._layout, change)
        if change.kind == "delete":
            return
        now_at = change.new_dn or change.dn
        if not self._in_scope(now_at):
            if change.kind == "modrdn" and self._in_scope(change.dn):
                anchor = None if self._layout.dn_anchor else self._anchor_at(now_at, change)
                if anchor is not None:
                    yield Delta(anchor, None, mark)  # moved out of the served subtree
            return
        key = _key(now_at)
        after_start = self._order(change.position) > self._order(self._cutoff or change.position)
        if key in self._seen and not after_start:
            return
        entry = self._fetched.pop(key, None) or self._read(now_at)
        if entry is None:
            return  # gone since: the log's later delete or rename says so
        if len(self._seen) >= _SEEN_LIMIT:
            self._seen.clear()
        self._seen.add(key)
        yield from self._current(entry, change, mark)

    def _current(self, entry: Entry | str, change: LogChange, mark: str) -> Iterator[Delta]:
        """The entry as it is now; ``entry`` is only a DN when it exists but is not
        served (not of the classes, no anchor): a delete of the anchor it had."""
        found = None if isinstance(entry, str) else record(self._layout, entry)
        if found is None:
            dn = entry if isinstance(entry, str) else entry.dn
            anchor = dn if self._layout.dn_anchor else self._anchor_at(dn, change)
            if anchor is not None:
                yield Delta(anchor, None, mark)
            return
        old = None if self._layout.dn_anchor else self._old_anchor(change)
        if old is not None and old != found.anchor and change.kind != "add":
            yield Delta(old, None, mark)  # the anchor itself changed: the old one is gone
        yield Delta(found.anchor, _with_source(found, change), mark)

    # -- anchors -------------------------------------------------------------------

    def _old_anchor(self, change: LogChange) -> str | None:
        """The anchor the entry had before ``change``: its DN, a logged old value,
        or the value of its RDN when the anchor names it."""
        if self._layout.dn_anchor:
            return change.dn
        name = self._layout.anchor.ldap_name.lower()
        values = change.old.get(name)
        if values:
            return values[0]
        with contextlib.suppress(ValueError):
            for ava in parse_dn(change.dn)[0]:
                if ava.type.lower() == name:
                    return ava.value
        return None

    def _anchor_at(self, dn: str, change: LogChange) -> str | None:
        """The anchor of the entry now at ``dn`` (outside the scope, or no longer
        served), else the one the log says it had."""
        name = self._layout.anchor.ldap_name
        entry = self._read_any(dn, [name])
        value = None if entry is None else entry.first(name)
        return value or self._old_anchor(change)

    # -- reading -------------------------------------------------------------------

    def _fetch_served(self, changes: list[LogChange]) -> dict[tuple[tuple[str, str], ...], Entry]:
        """The served entries a page of accesslog changes touched, read a few hundred
        per search by ``entryDN`` (OpenLDAP's), rather than one search each; entries
        missing here (gone, not served) are read one by one afterwards."""
        if self._delta.source != "accesslog":
            return {}
        wanted = {
            _key(dn): dn
            for c in changes
            if c.kind != "delete" and self._in_scope(dn := c.new_dn or c.dn)
        }
        fetched: dict[tuple[tuple[str, str], ...], Entry] = {}
        names = list(wanted.values())
        for start in range(0, len(names), _FETCH_CHUNK):
            chunk = names[start : start + _FETCH_CHUNK]
            either = "".join(f"(entryDN={escape_filter_value(dn)})" for dn in chunk)
            query = f"(&{self._layout.class_filter}(|{either}))"
            for entry in self._search_all(query):
                if record(self._layout, entry) is not None:
                    fetched[_key(entry.dn)] = entry
        return fetched

    def _search_all(self, query: str) -> list[Entry]:
        base = self._settings.base_dn

        def work(connection: ldap3.Connection) -> list[Entry]:
            connection.search(base, query, ldap3.SUBTREE, attributes=self._layout.requested)
            check_result(connection.result, f"search {base}")
            return response_entries(connection.response)

        return self._reads.run(f"search {base}", work)

    def _read(self, dn: str) -> Entry | str | None:
        """The served entry at ``dn``; its DN alone when an entry there is not
        served; None when there is no entry."""
        entry = self._read_with(dn, self._layout.class_filter, self._layout.requested)
        if entry is not None and record(self._layout, entry) is not None:
            return entry
        other = self._read_any(dn, ["1.1"])
        return None if other is None else other.dn

    def _read_any(self, dn: str, attributes: list[str]) -> Entry | None:
        return self._read_with(dn, "(objectClass=*)", attributes)

    def _read_with(self, dn: str, query: str, attributes: list[str]) -> Entry | None:
        def work(connection: ldap3.Connection) -> list[Entry]:
            with contextlib.suppress(LDAPNoSuchObjectResult):
                connection.search(dn, query, ldap3.BASE, attributes=attributes)
            if (connection.result or {}).get("result") == _NO_SUCH_OBJECT:
                return []
            check_result(connection.result, f"read {dn}")
            return response_entries(connection.response)

        entries = self._reads.run(f"read {dn}", work)
        return entries[0] if entries else None

    def _page(
        self, session: LdapSession, base: str, scope: str, query: str, attributes: list[str]
    ) -> list[Entry]:
        """The next page of a paged search (``done`` after the last page)."""

        def work(connection: ldap3.Connection) -> list[Entry]:
            connection.search(
                base,
                query,
                scope,
                attributes=attributes,
                paged_size=self._settings.page_size,
                paged_cookie=self._cookie,
                paged_criticality=True,
            )
            check_result(connection.result, f"search {base}")
            control = (connection.result.get("controls") or {}).get(PAGED_RESULTS, {})
            self._cookie = control.get("value", {}).get("cookie") or None
            self.done = self._cookie is None
            return response_entries(connection.response)

        return session.run(f"search {base}", work)

    def _usn_page(self, watermark: str) -> list[Delta]:
        """The entries changed at or after ``watermark``; each Delta keeps the
        watermark but the last, which carries the server's USN at the start."""
        query = log_rules.usn_since_filter(self._layout.class_filter, watermark)
        requested = self._layout.requested
        found = self._page(self._log, self._settings.base_dn, ldap3.SUBTREE, query, requested)
        records = [r for r in (record(self._layout, e) for e in found) if r is not None]
        deltas = [Delta(r.anchor, r, watermark) for r in records]
        if self.done and deltas:
            last = deltas[-1]
            deltas[-1] = Delta(last.anchor, last.record, self._cutoff or watermark)
        return deltas

    def _newest_request(self) -> str | None:
        """The newest reqStart in the log; None for an empty log."""
        now = datetime.now(UTC)
        for window in _NEWEST_WINDOWS:
            query = "(objectClass=auditObject)"
            if window is not None:
                since = (now - window).strftime("%Y%m%d%H%M%SZ")
                query = f"(&{query}(reqStart>={since}))"
            newest = self._max_over(query)
            if newest is not None:
                return newest
        return None

    def _max_over(self, query: str) -> str | None:
        newest: str | None = None
        self._cookie, self.done = None, False
        while not self.done:
            for entry in self._page(self._log, self._delta.base, ldap3.LEVEL, query, ["reqStart"]):
                start = entry.first("reqStart")
                if start is not None and (newest is None or start > newest):
                    newest = start
        self._cookie, self.done = None, False
        return newest

    def _any_log_entry(self, query: str) -> bool:
        """Whether the log holds an entry matching ``query``: one is asked for, and
        the server's sizeLimitExceeded (which ldap3 does not raise) says there are more."""

        def work(connection: ldap3.Connection) -> bool:
            connection.search(
                self._delta.base, query, ldap3.LEVEL, attributes=["1.1"], size_limit=1
            )
            return bool(response_entries(connection.response))

        return self._log.run(f"search {self._delta.base}", work)

    def _root_dse(self, name: str) -> str | None:
        def work(connection: ldap3.Connection) -> str | None:
            connection.search("", "(objectClass=*)", ldap3.BASE, attributes=[name])
            check_result(connection.result, "read the root DSE")
            entries = response_entries(connection.response)
            return entries[0].first(name) if entries else None

        return self._log.run("read the root DSE", work)

    def _in_scope(self, dn: str) -> bool:
        try:
            return dn_within(dn, self._settings.base_dn)
        except ValueError:
            return False

    def _order(self, position: str) -> Any:
        """Positions compare as text (reqStart) or as numbers (change numbers, USNs)."""
        if self._delta.source == "accesslog":
            return position
        return int(position) if position.isdigit() else -1


def _key(dn: str) -> tuple[tuple[str, str], ...]:
    """``dn`` compared as the directory does (types and values without case)."""
    try:
        return tuple(ava.key for rdn in parse_dn(dn) for ava in sorted(rdn, key=lambda a: a.key))
    except ValueError:
        return (("", dn.casefold()),)


def _with_source(found: Record, change: LogChange) -> Record:
    return Record(found.anchor, found.attributes, f"{change.kind} logged at {change.position}")


def _warn_no_anchor(layout: Layout, change: LogChange) -> None:
    log.warning(
        "%s of %s: the log holds no old %s, so the delete waits for the next full import "
        "(log the old values: olcAccessLogOld)",
        change.kind,
        change.dn,
        layout.anchor.ldap_name,
        extra={"action": "ldap.delta.no_anchor"},
    )
