"""The delta import of one connector: read what the target changed since the stored
watermark and apply it to the connector space.

A full import stores the watermark it read before streaming (``Importer``); a delta
applies the changes in batches, each batch committed with the watermark of its last
change, so a delta cut short resumes where it stopped. Without a stored watermark,
or when the target no longer holds the changes since it (``WatermarkExpiredError``),
the delta is recorded as ``fell_back`` with the reason and a full import runs instead.

A delta holds the run gate as a full import does: never beside an export batch, and
its task is the importer's, so never beside a full import either.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from ecmahost.connectors.base import Connector, Delta
from ecmahost.connectors.exceptions import (
    ConfigError,
    PermanentError,
    TransientError,
    WatermarkExpiredError,
)
from ecmahost.engine.space.states import RunKind, RunStatus
from ecmahost.engine.space.store import ConnectorSpace
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.importer import ImportReport
from ecmahost.engine.workers.state import ConnectorState

__all__ = ["BATCH_SIZE", "DeltaImport"]

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
"""Changes per transaction, and the most a crash makes a delta read again."""


class DeltaImport:
    """``run`` one delta import; ``full_import`` is the importer's, for the fallback."""

    def __init__(
        self,
        name: str,
        connector: Connector,
        space: ConnectorSpace,
        gate: RunGate,
        state: ConnectorState,
        full_import: Callable[[], Awaitable[ImportReport]],
    ) -> None:
        self.name = name
        self._connector = connector
        self._space = space
        self._gate = gate
        self._state = state
        self._full_import = full_import
        self._degraded = False
        """This task marked the connector degraded: a good delta clears that."""

    async def run(self) -> ImportReport:
        """One delta import, or the full import it fell back to."""
        async with self._gate.full_import():
            run_id = await self._space.begin_run(self.name, RunKind.DELTA)
            started = time.monotonic()
            watermark = await self._space.watermark(self.name)
            counts: Counter[str] = Counter()
            read = 0
            try:
                if watermark is None:
                    raise _NoWatermark("no watermark stored yet")
                read = await self._stream(run_id, watermark, counts)
            except (_NoWatermark, WatermarkExpiredError) as exc:
                reason = str(exc) if isinstance(exc, _NoWatermark) else f"watermark expired: {exc}"
                await self._fall_back(run_id, read, counts, reason)
            except (TransientError, PermanentError, ConfigError) as exc:
                return await self._finish(run_id, read, counts, str(exc), started)
            else:
                return await self._finish(run_id, read, counts, None, started)
        return await self._full_import()  # after the gate: the full import takes it itself

    async def _stream(self, run_id: int, watermark: str, counts: Counter[str]) -> int:
        read = 0
        batch: list[Delta] = []
        async for change in self._connector.delta_import(watermark):
            batch.append(change)
            if len(batch) >= BATCH_SIZE:
                counts.update(await self._space.apply_delta(self.name, run_id, batch))
                read += len(batch)
                batch = []
        if batch:
            counts.update(await self._space.apply_delta(self.name, run_id, batch))
            read += len(batch)
        return read

    async def _fall_back(self, run_id: int, read: int, counts: Counter[str], reason: str) -> None:
        message = f"{reason}; a full import runs instead"
        await self._space.finish_run(run_id, RunStatus.FELL_BACK, {"read": read, **counts}, message)
        log.warning(
            "delta import of %s: %s",
            self.name,
            message,
            extra={"action": "delta.fallback", "connector": self.name, "run_id": run_id},
        )

    async def _finish(
        self, run_id: int, read: int, counts: Counter[str], error: str | None, started: float
    ) -> ImportReport:
        report = ImportReport(run_id, error is None, read, {"read": read, **counts}, error)
        status = RunStatus.OK if report.ok else RunStatus.FAILED
        await self._space.finish_run(run_id, status, report.counts, error)
        extra = {"action": "delta.finished", "connector": self.name, "run_id": run_id}
        if report.ok:
            log.info(
                "delta import of %s: %d changes read in %.2f s, %s",
                self.name,
                read,
                time.monotonic() - started,
                dict(counts),
                extra=extra,
            )
            if self._degraded:
                self._degraded = False
                self._state.serving()
        else:
            log.error("delta import of %s failed after %d changes: %s", self.name, read, error)
            self._state.mark_degraded(f"delta import failed: {error}")
            self._degraded = True
        return report


class _NoWatermark(Exception):
    """No full import stored a watermark yet: the delta cannot start."""
