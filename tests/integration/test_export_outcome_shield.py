"""A stopped export worker still records what the target already did: the outcome is
written under ``asyncio.shield`` (over a real space, on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from ecmahost.connectors.base import Change, Result
from ecmahost.connectors.memory.connector import MemoryConnector, MemorySettings
from ecmahost.engine import queue
from ecmahost.engine.config import ConnectorConfig
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.states import EventStatus, Op
from ecmahost.engine.workers.exporter import Exporter
from ecmahost.engine.workers.gate import RunGate

NAME = "Mem"


class HeldTarget(MemoryConnector):
    """Takes each batch, then says so and answers only once ``answer`` is set."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(NAME, MemorySettings(), tmp_path)
        self.took = asyncio.Event()
        self.answer = asyncio.Event()

    async def export(self, changes: Sequence[Change]) -> Sequence[Result]:
        results = await super().export(changes)
        self.took.set()
        await self.answer.wait()
        return results


async def test_a_worker_cancelled_while_recording_still_records_the_outcome(
    space: ConnectorSpace, tmp_path: Path
) -> None:
    target = HeldTarget(tmp_path)
    config = ConnectorConfig.model_validate({"name": NAME, "type": "memory", "token": "x" * 20})
    exporter = Exporter(NAME, target, space, config, RunGate())
    _, event_id = await space.create(
        NAME, "a", Staging({"AzureObjectID": "a"}, visible=True, export=Op.UPSERT)
    )
    drain = asyncio.create_task(exporter.drain_once())
    await target.took.wait()  # the target holds the change now
    async with space.write():  # the space is busy: the outcome waits to be written
        target.answer.set()
        await asyncio.sleep(0.1)
        drain.cancel()  # the host stops meanwhile
        await asyncio.gather(drain, return_exceptions=True)

    await exporter.close()

    [event] = await queue.list_events(space, ids=[event_id])
    assert event.status == EventStatus.DONE  # not running, to be exported once more
    assert "a" in target.objects
