"""Initial passwords in the real queue (on SQLite and on PostgreSQL): queued sealed,
erased when the target took the change or it was discarded, kept sealed by a failed
event for its replay, and never in the objects' rows; on SQLite the erasing read
keeps its indexes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ecmahost.engine import queue
from ecmahost.engine.queue import ErrorKind
from ecmahost.engine.queue.sealed import Sealer
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.erasure import sealed_payloads
from ecmahost.engine.space.models import ExportEvent, ObjectRow
from ecmahost.engine.space.states import Op
from sqlalchemy import select
from sqlalchemy.dialects import sqlite as sqlite_dialect

NAME = "Mem"
CARRIED = frozenset({"export_password"})


def _staging(sealer: Sealer, anchor: str, password: str) -> Staging:
    exported = sealer.seal({"AzureObjectID": anchor, "export_password": password}, CARRIED)
    return Staging({"AzureObjectID": anchor}, True, Op.UPSERT, exported=exported)


async def _rows(space: ConnectorSpace, *columns: Any) -> list[list[Any]]:
    """Every row's ``columns``: what the database holds."""
    async with space.read() as session:
        return [list(row) for row in await session.execute(select(*columns))]


async def _text(space: ConnectorSpace, *columns: Any) -> str:
    """The same as JSON text, to look for a value anywhere in it."""
    return json.dumps(await _rows(space, *columns))


_PAYLOAD = ExportEvent.payload
_OBJECT_STATES = (ObjectRow.attributes, ObjectRow.confirmed)


async def test_initial_password_erased_when_done_or_discarded_kept_when_failed(
    space: ConnectorSpace, tmp_path: Path
) -> None:
    sealer = Sealer(tmp_path)
    await space.create(NAME, "ann", _staging(sealer, "ann", "ann-Pw-1"))
    await space.create(NAME, "bob", _staging(sealer, "bob", "bob-Pw-1"))
    assert (await _text(space, _PAYLOAD)).count("$sealed") == 2
    assert "Pw-1" not in await _text(space, _PAYLOAD)

    ann, bob = sorted(
        await queue.claim(space, NAME, 10, carried=CARRIED), key=lambda c: c.object_id
    )
    ann, bob = (ann, bob) if ann.change.anchor == "ann" else (bob, ann)
    await queue.record(space, done=[ann], failed=[(bob, "refused", ErrorKind.PERMANENT)])
    sealed = {
        status: "$sealed" in json.dumps(payload)
        for status, payload in await _rows(space, ExportEvent.status, _PAYLOAD)
    }
    assert sealed == {"done": False, "failed": True}
    objects = await _text(space, *_OBJECT_STATES)
    assert "$sealed" not in objects and "export_password" not in objects

    # Replayed, the failed event is exported with its password; the row never gets it.
    await queue.replay(space, None)
    assert "$sealed" not in await _text(space, *_OBJECT_STATES)
    (again,) = await queue.claim(space, NAME, 10, carried=CARRIED)
    assert sealer.unseal(again.change.attributes)["export_password"] == "bob-Pw-1"
    await queue.record(space, failed=[(again, "refused again", ErrorKind.PERMANENT)])
    await queue.discard(space, list(again.event_ids))
    assert "$sealed" not in await _text(space, _PAYLOAD)


async def test_the_erasing_read_uses_the_primary_key_and_the_object_index(
    sqlite_space: ConnectorSpace, tmp_path: Path
) -> None:
    statement = sealed_payloads([1, 2], ["a", "b"]).compile(
        dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}
    )
    with sqlite3.connect(tmp_path / "ecmahost.db") as db:
        plan = " ".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {statement}"))
    assert "INTEGER PRIMARY KEY" in plan and "ix_export_events_object" in plan, plan
    assert "SCAN export_events" not in plan, plan
