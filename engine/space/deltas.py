"""One batch of a delta import: records upserted as a full import writes them, the
deleted objects removed, and the watermark reached, all in one transaction.

A removal is a full import's removal, one anchor at a time: the object the target
held under that anchor is forgotten, unless an export of it is open or finished
since the delta began (the target's deletion may predate the write Entra just made:
the export decides, and the next import reads the result).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ecmahost.connectors.base import Delta, Record
from ecmahost.engine.space import watermarks
from ecmahost.engine.space.import_batch import upsert_batch
from ecmahost.engine.space.models import ExportEvent, ObjectRow, Run
from ecmahost.engine.space.records import object_id_for
from ecmahost.engine.space.states import OPEN_STATUSES
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["apply_batch"]


async def apply_batch(
    session: AsyncSession, connector: str, run_id: int, batch: Sequence[Delta]
) -> Mapping[str, int]:
    """Apply ``batch`` (changes in the order they were made) and store the watermark
    of its last change. An anchor changed several times counts its last change only."""
    last: dict[str, Record | None] = {}
    for change in batch:
        last.pop(change.anchor, None)  # re-inserted: dict order is the order of last changes
        last[change.anchor] = change.record
    records = [r for r in last.values() if r is not None]
    removed = [a for a, r in last.items() if r is None]
    counts: dict[str, int] = {}
    if records:
        counts.update(
            await upsert_batch(
                session,
                connector,
                run_id,
                records,
                lambda a: object_id_for(connector, a),
                later_wins=True,
            )
        )
    counts["removed"] = await _remove(session, connector, run_id, removed) if removed else 0
    await watermarks.save(session, connector, batch[-1].watermark)
    return counts


async def _remove(session: AsyncSession, connector: str, run_id: int, anchors: list[str]) -> int:
    started_at: datetime | None = await session.scalar(
        select(Run.started_at).where(Run.id == run_id)
    )
    recent = select(ExportEvent.object_id).where(
        ExportEvent.connector == connector,
        ExportEvent.status.in_(OPEN_STATUSES) | (ExportEvent.updated_at >= started_at),
    )
    result = await session.execute(
        delete(ObjectRow).where(
            ObjectRow.connector == connector,
            ObjectRow.target_anchor.in_(anchors),
            ObjectRow.id.not_in(recent),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
