"""In queued mode an export worker lets the changes that arrive just after a batch
gather into the next one (``export_linger_s``); a change after a quiet spell, and
every change in sync mode, is exported at once (over a real space, on SQLite and on
PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from ecmahost.connectors.base import Change, Result
from ecmahost.connectors.memory.connector import MemoryConnector, MemorySettings
from ecmahost.engine.config import ConnectorConfig
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.states import Op
from ecmahost.engine.workers.exporter import Exporter
from ecmahost.engine.workers.gate import RunGate

NAME = "Mem"
LINGER_S = 2.0


class TimedTarget(MemoryConnector):
    """Notes when each batch came (``batches`` holds what it held)."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(NAME, MemorySettings(), tmp_path)
        self.times: list[float] = []

    async def export(self, changes: Sequence[Change]) -> Sequence[Result]:
        self.times.append(time.monotonic())
        return await super().export(changes)

    async def exported(self, count: int) -> None:
        while sum(map(len, self.batches)) < count:
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("mode", ["queued", "sync"])
async def test_queued_exports_gather_the_changes_that_follow_a_batch(
    space: ConnectorSpace, tmp_path: Path, mode: str
) -> None:
    target = TimedTarget(tmp_path)
    config = ConnectorConfig.model_validate(
        {"name": NAME, "type": "memory", "token": "x" * 20, "export_mode": mode}
        | {"export_linger_s": LINGER_S}
    )
    exporter = Exporter(NAME, target, space, config, RunGate())
    worker = asyncio.create_task(exporter.run())

    async def create(anchor: str) -> None:
        staging = Staging({"AzureObjectID": anchor}, visible=True, export=Op.UPSERT)
        await space.create(NAME, anchor, staging)
        exporter.wake()

    try:
        started = time.monotonic()
        await create("a")
        await asyncio.wait_for(target.exported(1), LINGER_S / 2)  # at once, after quiet
        for anchor in ("b", "c", "d"):
            await create(anchor)
        await asyncio.wait_for(target.exported(4), 3 * LINGER_S)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await exporter.close()

    first_at, second_at, *_ = target.times
    first, second, *rest = ([c.anchor for c in batch] for batch in target.batches)
    assert first == ["a"] and first_at - started < LINGER_S / 2
    if mode == "queued":
        assert (second, rest) == (["b", "c", "d"], [])
        assert second_at - first_at >= LINGER_S * 0.9
    else:  # each answer waits for its export: never held back
        assert second_at - first_at < LINGER_S / 2
