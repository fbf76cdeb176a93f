"""What ``/health?detail=1`` reads: the state holder the importer keeps, and the
store's summaries of imports and of the export queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ecmahost.connectors.base import Record
from ecmahost.connectors.exceptions import TransientError
from ecmahost.connectors.memory.connector import MemoryConnector, MemorySettings
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.states import Op
from ecmahost.engine.workers import importer as importer_module
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.importer import Importer
from ecmahost.engine.workers.state import ConnectorState, Phase

NAME = "Mem"


class _FlakyTarget(MemoryConnector):
    """Its imports fail while ``down`` is set; ``attempts`` counts them all."""

    down = True
    attempts = 0

    async def full_import(self) -> AsyncIterator[Record]:  # type: ignore[override]
        self.attempts += 1
        if self.down:
            raise TransientError("connection refused")
        async for record in super().full_import():
            yield record


async def _until(condition, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_failed_import_degrades_then_retries_by_itself(
    space: ConnectorSpace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer_module, "FIRST_RETRY_S", 0.01)
    target = _FlakyTarget(NAME, MemorySettings(), tmp_path)
    target.objects["a"] = {"AzureObjectID": "a"}
    state = ConnectorState(NAME, up=True)
    importer = Importer(NAME, target, space, RunGate(), state=state, retry_cap_s=0.05)
    assert not await space.has_finished_import(NAME)

    importer.request()
    task = asyncio.create_task(importer.run())
    try:
        await _until(lambda: target.attempts >= 3)  # nobody asked again: it retried
        assert (state.phase, state.filled) == (Phase.DEGRADED, False)
        assert state.reason == "import failed: connection refused"
        failed = await space.last_import(NAME)
        assert failed is not None and (failed.status, failed.error) == (
            "failed",
            "connection refused",
        )
        assert not await space.has_finished_import(NAME)

        target.down = False
        await _until(lambda: state.phase is Phase.SERVING)
    finally:
        task.cancel()
    assert (state.reason, state.filled) == (None, True)
    assert await space.has_finished_import(NAME)
    last = await space.last_import(NAME)
    assert last is not None and (last.status, last.counts["seen"]) == ("ok", 1)


async def test_queue_summary_counts_waiting_and_failed_events(space: ConnectorSpace) -> None:
    empty = await space.queue_summary(NAME)
    assert (empty.pending, empty.failed, empty.oldest_pending_at) == (0, 0, None)

    for anchor in ("a", "b"):
        await space.create(
            NAME, anchor, Staging({"AzureObjectID": anchor}, visible=True, export=Op.UPSERT)
        )
    await space.create(
        "Other", "c", Staging({"AzureObjectID": "c"}, visible=True, export=Op.UPSERT)
    )

    summary = await space.queue_summary(NAME)
    assert (summary.pending, summary.failed) == (2, 0)
    assert summary.oldest_pending_at is not None


def test_mark_degraded_is_cleared_by_a_good_import() -> None:
    state = ConnectorState(NAME, up=True)
    state.mark_degraded("import refused: it would remove 90% of the users")
    state.importing()  # the reason still holds while the next import runs
    assert (state.phase, state.reason) == (
        Phase.DEGRADED,
        "import refused: it would remove 90% of the users",
    )
    assert state.settled.is_set()
    state.import_finished(True, None)
    assert (state.phase, state.reason, state.answers_reads) == (Phase.SERVING, None, True)
