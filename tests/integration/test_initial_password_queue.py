"""Initial passwords in the real queue (a SQLite file): queued sealed, erased when the
target took the change or it was discarded, kept sealed by a failed event for its
replay, and never in the objects' rows; the erasing read keeps its indexes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ecmahost.engine import queue
from ecmahost.engine.queue import ErrorKind
from ecmahost.engine.queue.sealed import Sealer
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.database import sqlite_url
from ecmahost.engine.space.erasure import sealed_payloads
from ecmahost.engine.space.states import Op
from sqlalchemy.dialects import sqlite as sqlite_dialect

NAME = "Mem"
CARRIED = frozenset({"export_password"})


@pytest.fixture
async def space(tmp_path: Path) -> AsyncIterator[ConnectorSpace]:
    opened = await ConnectorSpace.open(sqlite_url(tmp_path))
    try:
        yield opened
    finally:
        await opened.close()


def _staging(sealer: Sealer, anchor: str, password: str) -> Staging:
    exported = sealer.seal({"AzureObjectID": anchor, "export_password": password}, CARRIED)
    return Staging({"AzureObjectID": anchor}, True, Op.UPSERT, exported=exported)


def _rows(tmp_path: Path, sql: str) -> str:
    with sqlite3.connect(tmp_path / "ecmahost.db") as db:
        return json.dumps(db.execute(sql).fetchall())


async def test_initial_password_erased_when_done_or_discarded_kept_when_failed(
    space: ConnectorSpace, tmp_path: Path
) -> None:
    sealer = Sealer(tmp_path)
    await space.create(NAME, "ann", _staging(sealer, "ann", "ann-Pw-1"))
    await space.create(NAME, "bob", _staging(sealer, "bob", "bob-Pw-1"))
    assert _rows(tmp_path, "SELECT payload FROM export_events").count("$sealed") == 2
    assert "Pw-1" not in _rows(tmp_path, "SELECT payload FROM export_events")

    ann, bob = sorted(
        await queue.claim(space, NAME, 10, carried=CARRIED), key=lambda c: c.object_id
    )
    ann, bob = (ann, bob) if ann.change.anchor == "ann" else (bob, ann)
    await queue.record(space, done=[ann], failed=[(bob, "refused", ErrorKind.PERMANENT)])
    sealed = {
        status: "$sealed" in payload
        for status, payload in json.loads(
            _rows(tmp_path, "SELECT status, payload FROM export_events")
        )
    }
    assert sealed == {"done": False, "failed": True}
    objects = _rows(tmp_path, "SELECT attributes, confirmed FROM objects")
    assert "$sealed" not in objects and "export_password" not in objects

    # Replayed, the failed event is exported with its password; the row never gets it.
    await queue.replay(space, None)
    assert "$sealed" not in _rows(tmp_path, "SELECT attributes, confirmed FROM objects")
    (again,) = await queue.claim(space, NAME, 10, carried=CARRIED)
    assert sealer.unseal(again.change.attributes)["export_password"] == "bob-Pw-1"
    await queue.record(space, failed=[(again, "refused again", ErrorKind.PERMANENT)])
    await queue.discard(space, list(again.event_ids))
    assert "$sealed" not in _rows(tmp_path, "SELECT payload FROM export_events")


async def test_the_erasing_read_uses_the_primary_key_and_the_object_index(
    space: ConnectorSpace, tmp_path: Path
) -> None:
    statement = sealed_payloads([1, 2], ["a", "b"]).compile(
        dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}
    )
    with sqlite3.connect(tmp_path / "ecmahost.db") as db:
        plan = " ".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {statement}"))
    assert "INTEGER PRIMARY KEY" in plan and "ix_export_events_object" in plan, plan
    assert "SCAN export_events" not in plan, plan
