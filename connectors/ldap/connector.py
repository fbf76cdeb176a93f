"""An LDAP directory as a target (OpenLDAP, 389 Directory Server, Active Directory
LDS, ...), through ldap3.

Users are the entries under ``base_dn`` that carry every one of ``object_classes``;
the anchor is an LDAP attribute of theirs. The served attributes and their types
come from the server's subschema (see ``ldap_schema``). A full import pages through
the entries with the simple paged results control (RFC 2696), holding one page at
a time. An export finds each change's entry by its anchor, then adds it, modifies
only the attributes whose value differs, or deletes it.

ldap3 is synchronous: every call runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import ClassVar

from ecmahost.connectors.base import (
    Capability,
    Change,
    ChangeKind,
    Connector,
    ConnectorSettings,
    Delta,
    Record,
    Result,
    Schema,
)
from ecmahost.connectors.exceptions import (
    ConfigError,
    ConflictError,
    PermanentError,
    TransientError,
)
from ecmahost.connectors.ldap.delta import DeltaReader
from ecmahost.connectors.ldap.dn import child_dn, is_within, parse_dn, render
from ecmahost.connectors.ldap.driver import MODIFY_REPLACE, LDAPNoSuchObjectResult, ldap3
from ecmahost.connectors.ldap.entry import (
    Entry,
    given_dn,
    new_entry,
    plan_modify,
)
from ecmahost.connectors.ldap.errors import check_result
from ecmahost.connectors.ldap.escape import escape_dn_value, escape_filter_value
from ecmahost.connectors.ldap.pager import Pager
from ecmahost.connectors.ldap.pager import response_entries as _entries
from ecmahost.connectors.ldap.schema import Layout, discover
from ecmahost.connectors.ldap.session import LdapSession
from ecmahost.connectors.ldap.settings import LdapSettings
from ecmahost.connectors.secrets import redact, resolve_secret

__all__ = ["LdapConnector", "LdapSettings"]

log = logging.getLogger(__name__)

_NO_SUCH_OBJECT = 32


class LdapConnector(Connector):
    """One LDAP directory holding one kind of user entry."""

    type_name: ClassVar[str] = "ldap"
    settings_model: ClassVar[type[ConnectorSettings]] = LdapSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.IMPORT, Capability.EXPORT, Capability.RENAME, Capability.ASSIGNS_ANCHOR}
    )

    def __init__(self, name: str, settings: LdapSettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self.settings: LdapSettings = settings
        if settings.delta is not None:
            # The class declares what every LDAP connector can do; this one can read
            # its directory's change log too. (setattr: the attribute is a ClassVar.)
            setattr(self, "capabilities", self.capabilities | {Capability.DELTA_IMPORT})  # noqa: B010
        self._password: str | None = None
        self._session: LdapSession | None = None
        self._layout: Layout | None = None
        # Batches queue here, on the event loop, rather than each holding a thread.
        self._export_lock = asyncio.Lock()

    @property
    def _key(self) -> str:
        return f"connectors.{self.name}.settings"

    async def open(self) -> None:
        """Resolve the password, bind, and read the schema the settings ask for."""
        ca_file = self.settings.ca_file
        if ca_file is not None and not self.settings.resolve(ca_file, self.base_dir).is_file():
            raise ConfigError(f"no such file: {ca_file}", f"{self._key}.ca_file")
        secret = self.settings.password.get_secret_value()
        self._password = resolve_secret(secret, f"{self._key}.password", self.base_dir)
        redact(self._password, f"{self._key}.password")
        self._session = self._new_session()
        self._layout = await asyncio.to_thread(self._discover)
        log.info(
            "%s: serving %d attributes of %s under %s",
            self.name,
            len(self._layout.schema.attributes),
            "+".join(self.settings.object_classes),
            self.settings.base_dn,
            extra={"action": "ldap.open", "connector": self.name},
        )

    async def close(self) -> None:
        if self._session is not None:
            await asyncio.to_thread(self._session.close)

    async def validate(self) -> None:
        """Bind, and check that ``base_dn`` and ``container`` exist."""
        session = await self._ready_session()
        for dn in dict.fromkeys((self.settings.base_dn, self.settings.new_entries_under)):
            await asyncio.to_thread(session.run, f"read {dn}", _read_base(dn))

    async def schema(self) -> Schema:
        return (await self._ready()).schema

    async def full_import(self) -> AsyncIterator[Record]:
        layout = await self._ready()
        # A connection of its own: the paging cookie belongs to the connection, and
        # exports may run between two pages.
        pager = Pager(self._new_session(), layout, self.settings, self.name)
        try:
            while not pager.done:
                for item in await asyncio.to_thread(pager.next_page):
                    yield item
        finally:
            await asyncio.to_thread(pager.close)

    async def watermark(self) -> str:
        """The change log's position now: the newest reqStart, the last change
        number, the highest committed USN (see ``ldap.delta``)."""
        reader = await self._delta_reader()
        try:
            return await asyncio.to_thread(reader.watermark)
        finally:
            await asyncio.to_thread(reader.close)

    async def delta_import(self, watermark: str) -> AsyncIterator[Delta]:
        """The changes logged since ``watermark``, page by page (see ``ldap.delta``)."""
        reader = await self._delta_reader()
        try:
            await asyncio.to_thread(reader.start, watermark)
            while not reader.done:
                for delta in await asyncio.to_thread(reader.next_page, watermark):
                    yield delta
        finally:
            await asyncio.to_thread(reader.close)

    async def export(self, changes: Sequence[Change]) -> Sequence[Result]:
        layout = await self._ready()
        session = await self._ready_session()
        batch = _Batch(session, layout, self.settings)
        async with self._export_lock:
            return await asyncio.to_thread(batch.apply, changes)

    # -- helpers -----------------------------------------------------------------

    def _new_session(self, *, read_schema: bool = False) -> LdapSession:
        assert self._password is not None, "open() resolves the password"
        return LdapSession(self.settings, self._password, self.base_dir, read_schema=read_schema)

    async def _delta_reader(self) -> DeltaReader:
        if self.settings.delta is None:
            raise ConfigError("delta imports need a [settings.delta] table", self._key)
        layout = await self._ready()
        session = await self._ready_session()
        return DeltaReader(self._new_session(), session, layout, self.settings, self._key)

    def _discover(self) -> Layout:
        session = self._new_session(read_schema=True)
        try:
            session.run(f"bind to {self.settings.url}", lambda _: None)
            return discover(session.schema_info(), self.settings, self._key)
        finally:
            session.close()

    async def _ready(self) -> Layout:
        if self._layout is None:
            await self.open()
        assert self._layout is not None
        return self._layout

    async def _ready_session(self) -> LdapSession:
        await self._ready()
        assert self._session is not None
        return self._session


def _read_base(dn: str) -> Callable[[ldap3.Connection], None]:
    def work(connection: ldap3.Connection) -> None:
        connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["1.1"])
        check_result(connection.result, f"read {dn}")

    return work


class _Batch:
    """One export batch, applied change by change in a worker thread."""

    def __init__(self, session: LdapSession, layout: Layout, settings: LdapSettings) -> None:
        self._session = session
        self._layout = layout
        self._settings = settings

    def apply(self, changes: Sequence[Change]) -> list[Result]:
        results: list[Result] = []
        unavailable: TransientError | None = None
        for change in changes:
            if unavailable is not None:
                # The server just failed us: do not wait out a timeout per change.
                results.append(Result(change.anchor, unavailable))
                continue
            try:
                anchor = self._apply(change)
            except TransientError as exc:
                unavailable = TransientError(f"not attempted: {exc}")
                results.append(Result(change.anchor, exc))
            except PermanentError as exc:
                results.append(Result(change.anchor, exc))
            else:
                results.append(Result(anchor))
        return results

    def _apply(self, change: Change) -> str:
        """Apply the change; returns the anchor the entry has afterwards (the one the
        server assigned, for an assigned anchor)."""
        try:
            if change.kind is ChangeKind.DELETE:
                self._delete(change.anchor)
                return change.anchor
            entry = None
            if change.previous_anchor is not None:
                entry = self._rename(change.previous_anchor, change.anchor)
            if entry is None and change.anchor:
                entry = self._find(change.anchor, exact=True)
            dn = self._add(change) if entry is None else self._modify(change, entry)
        except ValueError as exc:  # the change cannot be written; nothing was sent
            raise PermanentError(f"cannot write {change.anchor!r}: {exc}") from exc
        return self._anchor_of(dn) if self._layout.anchor_assigned else change.anchor

    def _anchor_of(self, dn: str) -> str:
        """The anchor the server gave the entry at ``dn``: its DN as the server writes
        it, or the assigned attribute's value."""
        entry = self._read(dn)
        if self._layout.dn_anchor:
            return dn if entry is None else entry.dn
        value = None if entry is None else entry.first(self._layout.anchor.ldap_name)
        if value is None:
            raise TransientError(f"{dn} has no {self._layout.anchor.ldap_name} yet")
        return value

    def _read(self, dn: str) -> Entry | None:
        """The served entry at ``dn``; None when there is none."""

        def work(connection: ldap3.Connection) -> list[Entry]:
            with contextlib.suppress(LDAPNoSuchObjectResult):
                connection.search(
                    dn, self._layout.class_filter, ldap3.BASE, attributes=self._layout.requested
                )
            if (connection.result or {}).get("result") == _NO_SUCH_OBJECT:
                return []
            check_result(connection.result, f"read {dn}")
            return _entries(connection.response)

        entries = self._session.run(f"read {dn}", work)
        return entries[0] if entries else None

    def _find(self, anchor: str, *, exact: bool) -> Entry | None:
        """The entry whose anchor is ``anchor``. The server's matching rule may ignore
        case or spaces: an entry matched only that way is another user, a conflict
        for a write (``exact``) and nothing to delete otherwise. A DN anchor is read
        where it points."""
        if self._layout.dn_anchor:
            return self._read(anchor)
        attribute = self._layout.anchor.ldap_name
        query = f"(&{self._layout.class_filter}({attribute}={escape_filter_value(anchor)}))"

        def work(connection: ldap3.Connection) -> list[Entry]:
            connection.search(
                self._settings.base_dn, query, ldap3.SUBTREE, attributes=self._layout.requested
            )
            check_result(connection.result, f"search {attribute}={anchor!r}")
            return _entries(connection.response)

        entries = self._session.run(f"search {attribute}={anchor!r}", work)
        mine = [e for e in entries if anchor in e.values.get(attribute.lower(), ())]
        # Messages name the attribute only: they reach the SCIM client, which must not
        # learn other entries' DNs or values from them.
        if len(mine) > 1:
            raise PermanentError(f"{attribute}={anchor!r} names {len(mine)} entries")
        if not mine and entries and exact:
            raise ConflictError(
                f"{attribute}={anchor!r} is taken: another entry holds a {attribute} value "
                "the directory does not tell apart from it"
            )
        return mine[0] if mine else None

    def _add(self, change: Change) -> str:
        """Add the change's entry; returns its DN."""
        s = self._settings
        dn, attributes = new_entry(self._layout, change, s.new_entries_under, s.base_dn)
        try:
            self._write(f"add {dn}", lambda c: c.add(dn, attributes=attributes))
            return dn
        except ConflictError as exc:
            # The DN taken is another entry's: the message names the attribute only.
            naming = parse_dn(dn)[0][0]
            reason = str(exc).removeprefix(f"LDAP add {dn}: ")
            raise ConflictError(
                f"LDAP add: {naming.type} {naming.value!r} is taken: {reason}"
            ) from None

    def _rename(self, previous: str, anchor: str) -> Entry | None:
        """Give the entry held under ``previous`` the anchor ``anchor``: a modrdn when
        the anchor names the entry, else a modify. None when no entry has ``previous``
        (an earlier attempt renamed it already); a taken anchor is a conflict."""
        entry = self._find(previous, exact=True)
        if entry is None:
            return None
        name = self._layout.anchor.ldap_name
        dn = entry.dn
        if name.lower() == self._layout.rdn.ldap_name.lower():
            new_rdn = f"{name}={escape_dn_value(anchor)}"
            self._write(
                f"rename {dn} to {new_rdn}", lambda c: c.modify_dn(dn, new_rdn, delete_old_dn=True)
            )
        else:
            change = {name: [(MODIFY_REPLACE, [anchor])]}
            self._write(f"modify {dn}", lambda c: c.modify(dn, change))
        return self._find(anchor, exact=True)

    def _modify(self, change: Change, entry: Entry) -> str:
        """Give ``entry`` the change's values, moving it first when the attribute
        naming it changes; returns its DN afterwards."""
        entry = self._move_to_given(change, entry)
        plan = plan_modify(self._layout, change, entry)
        dn = entry.dn
        if plan.new_rdn is not None:
            new_rdn = plan.new_rdn
            self._write(
                f"rename {dn} to {new_rdn}",
                lambda c: c.modify_dn(dn, new_rdn, delete_old_dn=True),
            )
            dn = render((*parse_dn(new_rdn), *parse_dn(dn)[1:]))
        if plan.modifications:
            target, modifications = dn, plan.modifications
            self._write(f"modify {dn}", lambda c: c.modify(target, modifications))
        return dn

    def _move_to_given(self, change: Change, entry: Entry) -> Entry:
        """With the DN as anchor, a ``-dn-`` other than the entry's asks for a move
        (modify DN, to another container too), checked as a create's is."""
        given = given_dn(change) if self._layout.dn_anchor else None
        if given is None:
            return entry
        target = child_dn(given, self._settings.base_dn)
        wanted, held = parse_dn(target), parse_dn(entry.dn)
        if len(wanted) == len(held) and is_within(wanted, held):
            return entry
        rdn, superior, dn = render(wanted[:1]), render(wanted[1:]), entry.dn
        self._write(
            f"move {dn} to {target}",
            lambda c: c.modify_dn(dn, rdn, delete_old_dn=True, new_superior=superior),
        )
        moved = self._read(target)
        if moved is None:
            raise TransientError(f"{target} cannot be read after the move")
        return moved

    def _delete(self, anchor: str) -> None:
        if not anchor:
            return  # the server never assigned it an anchor: it never held the entry
        entry = self._find(anchor, exact=False)
        if entry is None:
            return  # already gone: a delete is idempotent

        def delete(connection: ldap3.Connection) -> None:
            # Deleted by someone else meanwhile: the goal is reached all the same.
            with contextlib.suppress(LDAPNoSuchObjectResult):
                connection.delete(entry.dn)

        self._write(f"delete {entry.dn}", delete, done_codes={_NO_SUCH_OBJECT})

    def _write(
        self,
        doing: str,
        operation: Callable[[ldap3.Connection], object],
        done_codes: frozenset[int] | set[int] = frozenset(),
    ) -> None:
        """Run a write; ldap3 raises for most failures, but a referral, for one,
        only shows in the result."""

        def work(connection: ldap3.Connection) -> None:
            operation(connection)
            if (connection.result or {}).get("result") not in done_codes:
                check_result(connection.result, doing)

        self._session.run(doing, work)
