"""One batch of a full import, written with a handful of set-based statements.

A full import may bring a million objects: per-object ORM work (a SELECT, a flush,
an index rewrite each) would take hours, so a batch is read with one query and
written with bulk INSERT/UPDATE statements (executemany).
"""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecmahost.connectors.base import Record
from ecmahost.engine.space.driver import for_postgresql, json_text, sqlite_time
from ecmahost.engine.space.index import keyed_rows
from ecmahost.engine.space.models import (
    SERIAL_SEQUENCE,
    ExportEvent,
    ObjectRow,
    ObjectValue,
    utcnow,
)
from ecmahost.engine.space.plans import (
    EVENTS_OF_OBJECT,
    OBJECTS_BY_ANCHOR,
    OBJECTS_BY_ID,
    OBJECTS_BY_TARGET_ANCHOR,
    indexed,
)
from ecmahost.engine.space.states import OPEN_STATUSES, ObjectState
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["upsert_batch"]

log = logging.getLogger(__name__)

_PRESENT = ObjectState.PRESENT.value


@dataclass
class _Plan:
    """The statements' rows for one batch, and what each record counted as."""

    now: datetime
    stamp: Any
    """``now`` as the driver stores it (text on SQLite)."""
    serials: Iterator[int]
    """The serials new objects take, in order."""
    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    """New objects' rows, in ``_INSERTED``'s order."""
    updates: list[dict[str, Any]] = field(default_factory=list)
    seen_only: list[str] = field(default_factory=list)
    reindexed: list[tuple[int, str, Any]] = field(default_factory=list)
    """(serial, connector, attributes) of every object whose index rows are written."""
    stale_index: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"added": 0, "updated": 0, "unchanged": 0, "pending": 0}
    )


async def upsert_batch(
    session: AsyncSession,
    connector: str,
    run_id: int,
    records: Sequence[Record],
    new_id: Any,
    *,
    later_wins: bool = False,
) -> Mapping[str, int]:
    """Upsert ``records`` by anchor. Objects with an open export keep their staged
    state; only what the target holds (``confirmed``) is refreshed. ``new_id(anchor)``
    gives the id of an object seen for the first time.

    An anchor met twice in one run (in this batch or an earlier one) keeps its first
    record; each later one is counted as ``duplicate`` and listed in ``duplicates``.
    With ``later_wins`` (a delta import, whose batches hold one record per anchor) an
    anchor an earlier batch of the run wrote is written again: it changed since."""
    by_anchor: dict[str, Record] = {}
    duplicates: list[tuple[Record, Record | None]] = []
    for record in records:
        if record.anchor in by_anchor:
            duplicates.append((record, by_anchor[record.anchor]))
        else:
            by_anchor[record.anchor] = record
    existing = await _rows_for_anchors(session, connector, list(by_anchor))
    for anchor, held in list(existing.items()):
        if held["seen_run"] == run_id and not later_wins:  # read earlier: the first stays
            duplicates.append((by_anchor.pop(anchor), None))
            del existing[anchor]
    busy = await _ids_with_open_events(session, [row["id"] for row in existing.values()])
    derived = {a: new_id(a) for a in by_anchor if a not in existing}
    taken = await _taken_ids(session, list(derived.values()))
    now = utcnow()
    sqlite = (await session.connection()).dialect.name == "sqlite"
    plan = _Plan(now, sqlite_time(now) if sqlite else now, await _serials(session, len(derived)))
    for anchor, record in by_anchor.items():
        row = existing.get(anchor)
        if row is None:
            object_id = derived[anchor]
            _add(
                plan,
                connector,
                run_id,
                str(uuid.uuid4()) if object_id in taken else object_id,
                record,
            )
        else:
            _refresh(plan, run_id, row, record, row["id"] in busy)
    await _write(session, plan, run_id)
    if duplicates:
        plan.counts["duplicate"] = len(duplicates)
        for later, first in duplicates:
            _warn_duplicate(connector, later, first)
    return plan.counts


def _warn_duplicate(connector: str, later: Record, first: Record | None) -> None:
    where = f" at {later.source}" if later.source else ""
    before = f" ({first.source})" if first is not None and first.source else ""
    log.warning(
        "anchor %r%s was already read earlier in this import%s; the first one is kept",
        later.anchor,
        where,
        before,
        extra={"action": "import.duplicate_anchor", "connector": connector},
    )


def _add(plan: _Plan, connector: str, run_id: int, object_id: str, record: Record) -> None:
    attributes = dict(record.attributes)
    serial = next(plan.serials)
    text = json_text(attributes)
    anchor, stamp = record.anchor, plan.stamp
    plan.inserts.append(
        (
            object_id,
            connector,
            anchor,
            text,  # attributes
            text,  # confirmed: what SCIM shows is what the target holds
            _PRESENT,
            1,  # version
            stamp,
            stamp,
            run_id,
            anchor,
            serial,
        )
    )
    plan.reindexed.append((serial, connector, attributes))
    plan.counts["added"] += 1


def _refresh(plan: _Plan, run_id: int, row: dict[str, Any], record: Record, busy: bool) -> None:
    attributes = dict(record.attributes)
    text = json_text(attributes)
    same_target = (
        _holds(row["confirmed"], attributes, text) and row["target_anchor"] == record.anchor
    )
    if busy or (_holds(row["attributes"], attributes, text) and row["state"] == _PRESENT):
        plan.counts["pending" if busy else "unchanged"] += 1
        if same_target:
            plan.seen_only.append(row["id"])
        else:
            plan.updates.append(
                {
                    "id": row["id"],
                    "confirmed": attributes,
                    "target_anchor": record.anchor,
                    "seen_run": run_id,
                }
            )
        return
    changed = {
        "id": row["id"],
        "connector": row["connector"],
        "attributes": attributes,
        "confirmed": attributes,
        "target_anchor": record.anchor,
        "state": _PRESENT,
        "version": row["version"] + 1,
        "updated_at": plan.now,
        "seen_run": run_id,
    }
    plan.updates.append(changed)
    plan.reindexed.append((row["serial"], row["connector"], attributes))
    plan.stale_index.append(row["serial"])
    plan.counts["added" if row["version"] == 0 else "updated"] += 1


async def _write(session: AsyncSession, plan: _Plan, run_id: int) -> None:
    if plan.inserts:
        await _driver_sql(session, _INSERT_OBJECTS, plan.inserts)
    if plan.updates:
        await session.execute(update(ObjectRow), plan.updates)
    if plan.seen_only:
        await session.execute(
            update(ObjectRow).where(ObjectRow.id.in_(plan.seen_only)).values(seen_run=run_id)
        )
    if plan.stale_index:
        await _driver_sql(session, _CLEAR_VALUES, (json.dumps(plan.stale_index),))
    # In key order: new objects' rows go to the end of the index's B-tree.
    values = [v for entry in sorted(plan.reindexed) for v in keyed_rows(*entry)]
    if values:
        await _driver_sql(session, _INSERT_VALUES, values)


# New objects and index rows go to the driver as plain tuples: SQLAlchemy's per-row
# parameter processing cost more than SQLite's own work on a large import.
_OBJECTS = ObjectRow.__tablename__
_VALUES = ObjectValue.__tablename__
_INSERTED = (
    "id",
    "connector",
    "anchor",
    "attributes",
    "confirmed",
    "state",
    "version",
    "created_at",
    "updated_at",
    "seen_run",
    "target_anchor",
    "serial",
)
"""The columns ``_add`` gives a new object (``external_id`` stays NULL)."""
_INSERT_OBJECTS = (
    f"INSERT INTO {_OBJECTS} ({', '.join(_INSERTED)}) VALUES ({', '.join('?' * len(_INSERTED))})"
)
_VALUE_COLUMNS = tuple(c.name for c in ObjectValue.__table__.columns)
_INSERT_VALUES = (
    f"INSERT INTO {_VALUES} ({', '.join(_VALUE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_VALUE_COLUMNS))})"
)


_KNOWN = (
    ObjectRow.id,
    ObjectRow.connector,
    ObjectRow.anchor,
    ObjectRow.target_anchor,
    ObjectRow.attributes,
    ObjectRow.confirmed,
    ObjectRow.state,
    ObjectRow.version,
    ObjectRow.seen_run,
    ObjectRow.serial,
)
"""What ``_refresh`` compares a known object's record with."""
# Each lookup names its index (``plans``): a first import into a new space runs
# without statistics, and SQLite then read every object of the connector for each
# batch's anchors, an import quadratic in its size. Two selects, not one with OR:
# ``INDEXED BY`` names one index, and an object found by both is found twice, which
# ``_rows_for_anchors`` takes as once.
_KNOWN_COLUMNS = ", ".join(c.key for c in _KNOWN)
_ROWS_FOR_ANCHORS = (
    f"SELECT {_KNOWN_COLUMNS} FROM {indexed(_OBJECTS, 'o', OBJECTS_BY_ANCHOR)} "
    "WHERE connector = ? AND anchor IN (SELECT value FROM json_each(?)) UNION ALL "
    f"SELECT {_KNOWN_COLUMNS} FROM {indexed(_OBJECTS, 'o', OBJECTS_BY_TARGET_ANCHOR)} "
    "WHERE connector = ? AND target_anchor IN (SELECT value FROM json_each(?))"
)
_OPEN_EVENTS = (
    f"SELECT object_id FROM {indexed(ExportEvent.__tablename__, 'e', EVENTS_OF_OBJECT)} "
    "WHERE object_id IN (SELECT value FROM json_each(?)) "
    "AND status IN (SELECT value FROM json_each(?))"
)
_TAKEN_IDS = (
    f"SELECT id FROM {indexed(_OBJECTS, 'o', OBJECTS_BY_ID)} "
    "WHERE id IN (SELECT value FROM json_each(?))"
)
_LAST_SERIAL = f"SELECT coalesce(max(serial), 0) FROM {_OBJECTS}"
_CLEAR_VALUES = (
    f"DELETE FROM {_VALUES} "
    "WHERE object_serial IN (SELECT CAST(value AS INTEGER) FROM json_each(?))"
)
_RESERVE_SERIALS = f"SELECT nextval('{SERIAL_SEQUENCE}') FROM generate_series(1, $1)"


async def _driver_sql(session: AsyncSession, sql: str, params: Any = ()) -> Any:
    """``sql`` (SQLite's text) run by the driver of the session's connection."""
    connection = await session.connection()
    if connection.dialect.name != "sqlite":
        sql = for_postgresql(sql)
    return await connection.exec_driver_sql(sql, params)


async def _rows_for_anchors(
    session: AsyncSession, connector: str, anchors: list[str]
) -> dict[str, dict[str, Any]]:
    """The object each target anchor belongs to: the one the target holds under it
    (even while a rename of it waits), else the one SCIM knows by it. Attributes
    stay JSON text: most rows of a re-import are unchanged, which ``_holds`` sees
    without parsing them."""
    listed = json.dumps(anchors)
    result = await _driver_sql(session, _ROWS_FOR_ANCHORS, (connector, listed, connector, listed))
    rows = [dict(r._mapping) for r in result]
    found = {r["anchor"]: r for r in rows if r["target_anchor"] in (None, r["anchor"])}
    found |= {r["target_anchor"]: r for r in rows if r["target_anchor"] is not None}
    wanted = set(anchors)
    return {a: r for a, r in found.items() if a in wanted}


def _holds(stored: str | dict[str, Any] | None, attributes: dict[str, Any], text: str) -> bool:
    """Whether the stored JSON ``stored`` (text on SQLite, read as JSON on
    PostgreSQL) is ``attributes`` (serialized as ``text``)."""
    if isinstance(stored, str):
        return stored == text or json.loads(stored) == attributes
    return stored == attributes


async def _ids_with_open_events(session: AsyncSession, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    result = await _driver_sql(
        session, _OPEN_EVENTS, (json.dumps(ids), json.dumps(sorted(OPEN_STATUSES)))
    )
    return {object_id for (object_id,) in result}


async def _taken_ids(session: AsyncSession, ids: list[str]) -> set[str]:
    """Derived ids already used, by objects renamed away from their first anchor."""
    if not ids:
        return set()
    result = await _driver_sql(session, _TAKEN_IDS, (json.dumps(ids),))
    return {object_id for (object_id,) in result}


async def _serials(session: AsyncSession, count: int) -> Iterator[int]:
    """Serials for ``count`` new objects. On SQLite those after the highest given
    so far (the write lock is held: nobody takes one meanwhile); on PostgreSQL,
    where other hosts take serials meanwhile, reserved from the sequence."""
    if not count:
        return iter(())
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        result = await connection.exec_driver_sql(_LAST_SERIAL)
        return itertools.count(int(result.scalar_one()) + 1)
    result = await connection.exec_driver_sql(_RESERVE_SERIALS, (count,))
    return iter(sorted(serial for (serial,) in result))
