"""In queued mode an export worker lets the changes that arrive just after a batch
gather into the next one (``export_linger_s``, longer after a slower batch); a change
after a quiet spell, and every change in sync mode, is exported at once (over a real
space, on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from ecmahost.connectors.base import Change, Result
from ecmahost.connectors.memory.connector import MemoryConnector, MemorySettings
from ecmahost.engine.config import ConnectorConfig
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.states import Op
from ecmahost.engine.workers.exporter import LINGER_PER_BATCH, Exporter
from ecmahost.engine.workers.gate import RunGate

NAME = "Mem"
LINGER_S = 2.0
SLOW_BATCH_S = 0.4


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


class SlowTarget(TimedTarget):
    """Each batch takes ``SLOW_BATCH_S`` (a large file to rewrite); ``times`` notes
    when each ended."""

    async def export(self, changes: Sequence[Change]) -> Sequence[Result]:
        await asyncio.sleep(SLOW_BATCH_S)
        return await super().export(changes)


def _exporter(
    target: MemoryConnector, space: ConnectorSpace, mode: str, linger_s: float
) -> Exporter:
    config = ConnectorConfig.model_validate(
        {"name": NAME, "type": "memory", "token": "x" * 20, "export_mode": mode}
        | {"export_linger_s": linger_s}
    )
    return Exporter(NAME, target, space, config, RunGate())


@asynccontextmanager
async def _running(exporter: Exporter) -> AsyncIterator[None]:
    """The exporter's workers run inside the block, and are stopped after it."""
    worker = asyncio.create_task(exporter.run())
    try:
        yield
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await exporter.close()


async def _create(space: ConnectorSpace, exporter: Exporter, anchor: str) -> None:
    staging = Staging({"AzureObjectID": anchor}, visible=True, export=Op.UPSERT)
    await space.create(NAME, anchor, staging)
    exporter.wake()


@pytest.mark.parametrize("mode", ["queued", "sync"])
async def test_queued_exports_gather_the_changes_that_follow_a_batch(
    space: ConnectorSpace, tmp_path: Path, mode: str
) -> None:
    target = TimedTarget(tmp_path)
    exporter = _exporter(target, space, mode, LINGER_S)
    async with _running(exporter):
        started = time.monotonic()
        await _create(space, exporter, "a")
        await asyncio.wait_for(target.exported(1), LINGER_S / 2)  # at once, after quiet
        for anchor in ("b", "c", "d"):
            await _create(space, exporter, anchor)
        await asyncio.wait_for(target.exported(4), 3 * LINGER_S)

    first_at, second_at, *_ = target.times
    first, second, *rest = ([c.anchor for c in batch] for batch in target.batches)
    assert first == ["a"] and first_at - started < LINGER_S / 2
    if mode == "queued":
        assert (second, rest) == (["b", "c", "d"], [])
        assert second_at - first_at >= LINGER_S * 0.9
    else:  # each answer waits for its export: never held back
        assert second_at - first_at < LINGER_S / 2


async def test_after_a_slower_batch_the_changes_gather_longer(
    space: ConnectorSpace, tmp_path: Path
) -> None:
    """A batch that took 0.4 s holds the next one back four times as long, past the
    configured 0.05 s: changes half a second apart still go in one batch."""
    target = SlowTarget(tmp_path)
    exporter = _exporter(target, space, "queued", 0.05)
    async with _running(exporter):
        await _create(space, exporter, "a")
        await asyncio.wait_for(target.exported(1), 5)
        await _create(space, exporter, "b")
        await asyncio.sleep(0.5)
        await _create(space, exporter, "c")
        await asyncio.wait_for(target.exported(3), 10)

    assert [[c.anchor for c in batch] for batch in target.batches] == [["a"], ["b", "c"]]
    first_done, second_done = target.times
    assert second_done - first_done >= LINGER_PER_BATCH * SLOW_BATCH_S + SLOW_BATCH_S
