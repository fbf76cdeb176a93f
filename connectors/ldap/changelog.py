"""The change logs a delta import reads, as values and filters: what each source's
log entry says about one write, how to ask for the writes since a watermark, and
whether the log still holds every change since it.

No I/O here (``delta`` runs the searches), so each source's rules are tested
without its server. Three sources, the ones Microsoft's Generic LDAP connector
reads for its delta imports:

* ``accesslog``: OpenLDAP's slapo-accesslog. One entry per write, named by
  ``reqStart`` (generalized time with microseconds, which sorts as text); the
  watermark is a ``reqStart``. ``reqOld`` (with ``olcAccessLogOld``) holds a deleted
  entry's values, from which a delete's anchor comes; ``reqEntryUUID`` the entry's
  entryUUID.
* ``changelog``: 389 Directory Server's retro changelog (draft-good-ldap-changelog):
  entries ``changeNumber=N,cn=changelog`` with ``targetDn``, ``changeType``,
  ``newRDN``/``newSuperior``; the root DSE's ``firstchangenumber`` and
  ``lastchangenumber`` bound it. The watermark is a change number.
* ``usn``: Active Directory LDS keeps no log: every entry's ``uSNChanged`` says when
  it last changed, the root DSE's ``highestCommittedUSN`` where the server is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ecmahost.connectors.ldap.dn import parse_dn, render
from ecmahost.connectors.ldap.escape import escape_filter_value

__all__ = [
    "WRITE_KINDS",
    "LogChange",
    "accesslog_change",
    "accesslog_covers_filter",
    "accesslog_since_filter",
    "changelog_change",
    "changelog_covers",
    "changelog_since_filter",
    "generalized_now",
    "is_generalized_time",
    "old_values",
    "usn_covers",
    "usn_since_filter",
]

WRITE_KINDS = frozenset({"add", "modify", "modrdn", "delete"})
"""The writes a delta import reads (accesslog's ``reqType``; 389's ``modrdn`` too)."""

_GENERALIZED = re.compile(r"^\d{14}(\.\d{1,6})?Z$")
_NUMBER = re.compile(r"^\d{1,30}$")


@dataclass(frozen=True, slots=True)
class LogChange:
    """One successful write, as a change log tells it."""

    position: str
    """The watermark once this write is applied (a reqStart, a change number)."""
    kind: str
    """``add``, ``modify``, ``modrdn`` or ``delete``."""
    dn: str
    """The entry's DN before the write."""
    new_dn: str | None = None
    """The entry's DN after a ``modrdn``."""
    old: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Values the entry held before the write, by lower-cased LDAP name (the logged
    old values; the entry's entryUUID). A delete's anchor comes from here."""


def is_generalized_time(text: str) -> bool:
    """Whether ``text`` is a reqStart-shaped generalized time (UTC, ``Z``)."""
    return bool(_GENERALIZED.match(text))


def generalized_now() -> str:
    """This machine's clock as a reqStart (the watermark of an empty log)."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S.%fZ")


def accesslog_since_filter(watermark: str) -> str:
    """The successful writes logged at or after ``watermark``. Failed writes
    (``reqResult`` other than 0) are logged unless ``olcAccessLogSuccess`` is set,
    and changed nothing."""
    since = escape_filter_value(watermark)
    kinds = "".join(f"(reqType={kind})" for kind in sorted(WRITE_KINDS))
    return f"(&(objectClass=auditWriteObject)(reqResult=0)(reqStart>={since})(|{kinds}))"


def accesslog_covers_filter(watermark: str) -> str:
    """Log entries at or before ``watermark``: while one remains, nothing written
    after it has been purged (the overlay purges the oldest first)."""
    return f"(&(objectClass=auditObject)(reqStart<={escape_filter_value(watermark)}))"


def accesslog_change(values: Mapping[str, Sequence[str]]) -> LogChange | None:
    """The write an accesslog entry records (``values`` by lower-cased name); None
    for an entry that records no successful write."""
    kind = _first(values, "reqtype").lower()
    dn = _first(values, "reqdn")
    start = _first(values, "reqstart")
    if kind not in WRITE_KINDS or _first(values, "reqresult") != "0" or not dn or not start:
        return None
    old = old_values(values.get("reqold", ()))
    uuid = _first(values, "reqentryuuid")
    if uuid:
        old.setdefault("entryuuid", [uuid])
    new_dn = None
    if kind == "modrdn":
        new_dn = _first(values, "reqnewdn") or _renamed(
            dn, _first(values, "reqnewrdn"), _first(values, "reqnewsuperior")
        )
    return LogChange(start, kind, dn, new_dn, old)


def old_values(lines: Sequence[str]) -> dict[str, list[str]]:
    """``reqOld``'s ``name: value`` lines as values by lower-cased name."""
    found: dict[str, list[str]] = {}
    for line in lines:
        name, separator, value = line.partition(":")
        if separator and not value.startswith(":"):  # ``name:: base64`` is binary
            found.setdefault(name.split(";", 1)[0].strip().lower(), []).append(value[1:])
    return found


def changelog_since_filter(watermark: str) -> str:
    """The retro changelog's entries from change number ``watermark`` on (the one
    at the watermark again: applying it twice changes nothing)."""
    return f"(&(objectClass=changeLogEntry)(changeNumber>={int(watermark)}))"


def changelog_covers(first: str | None, last: str | None, watermark: str) -> bool:
    """Whether a retro changelog holding ``first``..``last`` (the root DSE's
    ``firstchangenumber``/``lastchangenumber``; None when empty) still holds every
    change after ``watermark``: none trimmed past it, and the log not younger than
    the watermark (a rebuilt server numbers from 1 again)."""
    if not _NUMBER.match(watermark):
        return False
    mark = int(watermark)
    if first is None or last is None:
        return mark == 0  # nothing logged yet, and nothing ever read from it
    return int(first) <= mark + 1 and mark <= int(last)


def changelog_change(values: Mapping[str, Sequence[str]]) -> LogChange | None:
    """The write a retro changelog entry records. Its other attributes (the ones
    the plugin's ``nsslapd-attribute`` records, and ``targetUniqueId``) are the
    entry's values, which a delete's anchor comes from."""
    kind = _first(values, "changetype").lower()
    kind = "modrdn" if kind == "moddn" else kind
    dn = _first(values, "targetdn")
    number = _first(values, "changenumber")
    if kind not in WRITE_KINDS or not dn or not _NUMBER.match(number):
        return None
    new_dn = None
    if kind == "modrdn":
        new_dn = _renamed(dn, _first(values, "newrdn"), _first(values, "newsuperior"))
    skip = {"changetype", "targetdn", "changenumber", "changes", "objectclass", "changetime"}
    old = {name: list(v) for name, v in values.items() if name not in skip}
    return LogChange(number, kind, dn, new_dn, old)


def usn_since_filter(class_filter: str, watermark: str) -> str:
    """The served entries changed at or after USN ``watermark``."""
    return f"(&{class_filter}(uSNChanged>={int(watermark)}))"


def usn_covers(highest: str | None, watermark: str) -> bool:
    """Whether ``watermark`` is a USN this server has reached: one beyond its
    ``highestCommittedUSN`` comes from another server, or from before a restore."""
    if not _NUMBER.match(watermark) or highest is None or not _NUMBER.match(highest):
        return False
    return int(watermark) <= int(highest)


def _renamed(dn: str, new_rdn: str, new_superior: str) -> str | None:
    """The DN after a modrdn: the new RDN under the new superior, or the old parent."""
    if not new_rdn:
        return None
    try:
        parent = parse_dn(new_superior) if new_superior else parse_dn(dn)[1:]
        return render((*parse_dn(new_rdn), *parent))
    except ValueError:
        return None


def _first(values: Mapping[str, Sequence[str]], name: str) -> str:
    found = values.get(name)
    return found[0] if found else ""
