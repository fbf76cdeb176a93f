"""The full import of one connector: stream the target into the connector space.

An import never wipes the view by mistake: before removing the objects it did not
see, it weighs them (``removals.refusal``). A target found missing or empty while
the space holds objects, or removals beyond ``import_max_removals``, refuse the
import: nothing is removed, the run is recorded as ``refused`` with the reason, and
the connector is marked degraded. The records already read were written (each batch commits
as it streams): they are what the target holds, so they are kept; an empty or
missing target wrote none, and the view stays exactly as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ecmahost.connectors.base import Capability, Connector, Record, TargetMissingError
from ecmahost.connectors.exceptions import ConfigError, PermanentError, TransientError
from ecmahost.engine.metrics import HostMetrics
from ecmahost.engine.space.database import unreachable
from ecmahost.engine.space.states import RunKind, RunStatus
from ecmahost.engine.space.store import ConnectorSpace
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.removals import refusal
from ecmahost.engine.workers.state import ConnectorState

__all__ = ["DeltaRunner", "ImportReport", "Importer"]

log = logging.getLogger(__name__)

BATCH_SIZE = 10_000
"""Records per transaction: bounds memory and each hold of the write lock. Each commit
writes every page the batch touched, and the objects' id index (a hash of the anchor)
is touched all over: at 1,000,000 rows, 10,000 records per commit write a third fewer
pages per record than 5,000, for a hold of the write lock about as long as 5,000 took
before the value index was keyed by serial."""

PROGRESS_EVERY_S = 10.0
"""A long import logs how far it got this often: a silent hour looks like a hang."""

FIRST_RETRY_S = 1.0
"""Pause before the first new attempt after a failed import; it doubles up to the cap."""

FOLLOW_S = 2.0
"""How often a host that does not lead the connector's imports looks whether the
leading host's first import finished."""


class Leadership(Protocol):
    """Whether this host runs the connector's imports (``space.cluster``), and how
    an import asked of it reaches the host that does."""

    def leads(self, connector: str) -> bool: ...

    def pass_on(self, connector: str, *, delta: bool, allow_removals: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class ImportReport:
    """One run's outcome. ``refused`` gives the reason when removals were refused
    (``ok`` is then False and ``error`` the same reason); ``missing`` says the
    refusal was for a target that could not be found, which may come back by itself."""

    run_id: int
    ok: bool
    seen: int
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    refused: str | None = None
    missing: bool = False


class DeltaRunner(Protocol):
    """The connector's delta imports (``workers.delta``), run by the importer's task so
    that a delta never runs beside a full import."""

    async def run(self) -> ImportReport: ...


class Importer:
    """Runs full imports of one connector, one at a time, never during an export batch.

    A refused import marks the connector degraded (``state``) until an import
    succeeds."""

    def __init__(
        self,
        name: str,
        connector: Connector,
        space: ConnectorSpace,
        gate: RunGate,
        *,
        max_removals: int | None = None,
        state: ConnectorState | None = None,
        retry_cap_s: float = 60.0,
        metrics: HostMetrics | None = None,
    ) -> None:
        self.name = name
        self._connector = connector
        self._space = space
        self._gate = gate
        self._max_removals = max_removals
        self._requested = asyncio.Event()
        self._allow_removals = False
        self.state = state if state is not None else ConnectorState(name, up=True)
        self._retry_cap_s = retry_cap_s
        self._metrics = metrics if metrics is not None else HostMetrics()
        self._started = 0.0
        self.deltas: DeltaRunner | None = None
        """Set for a connector with delta imports; ``request(delta=True)`` runs them."""
        self._full_wanted = False
        self.leadership: Leadership | None = None
        """Set on a shared space: imports asked of a host that does not lead the
        connector are passed on to the one that does."""

    @property
    def leads(self) -> bool:
        return self.leadership is None or self.leadership.leads(self.name)

    def request(self, *, allow_removals: bool = False, delta: bool = False) -> None:
        """Ask for an import soon; asking again before it starts changes nothing,
        except that one asking with ``allow_removals`` makes it allow them. A
        ``delta`` request runs a delta import unless a full one is asked for too."""
        self._allow_removals = self._allow_removals or allow_removals
        self._full_wanted = self._full_wanted or not delta or self.deltas is None
        self._requested.set()

    async def run(self) -> None:
        """Run requested imports until cancelled. After a failed import (the target
        is down, say) the next one starts by itself, after a pause that doubles up
        to ``retry_cap_s``: the connector reconnects without anyone asking."""
        retry_s: float | None = None
        while True:
            if retry_s is None:
                await self._requested.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._requested.wait(), retry_s)
            self._requested.clear()
            allow, self._allow_removals = self._allow_removals, False
            full, self._full_wanted = self._full_wanted, False
            if self.leadership is not None and not self.leads:
                self.leadership.pass_on(self.name, delta=not full, allow_removals=allow)
                retry_s = None
                continue
            try:
                if full or self.deltas is None:
                    report = await self.full_import(allow_removals=allow)
                else:
                    report = await self.deltas.run()
                # A target found missing (a share not mounted yet) is looked for again
                # with back-off; other refusals wait for the schedule or an operator:
                # each try would read the whole target to refuse it once more.
                ok = report.ok or (report.refused is not None and not report.missing)
            except Exception as exc:  # a bug in one run must not end scheduled imports
                if unreachable(exc):  # the database is down or restarting: tried again later
                    log.warning(
                        "import stopped: the connector space's database cannot be reached (%s)",
                        type(exc).__name__,
                        extra={"action": "import.space_unreachable", "connector": self.name},
                    )
                    self.state.mark_degraded("the connector space's database cannot be reached")
                else:
                    log.exception(
                        "full import crashed",
                        extra={"action": "import.crash", "connector": self.name},
                    )
                    self.state.mark_degraded(f"import crashed: {type(exc).__name__}: {exc}")
                ok = False
            if ok:
                retry_s = None
            else:
                self._full_wanted = self._full_wanted or full  # the retry is of the same kind
                retry_s = min(self._retry_cap_s, 2 * retry_s if retry_s else FIRST_RETRY_S)

    async def follow(self) -> None:
        """Start-up on a shared space, which every host's start-up need not import
        again: serve once the space holds a finished import, and run the first one
        if this host leads the connector's imports before there is one."""
        while not await self._space.has_finished_import(self.name):
            if self.leads:
                self.request()
                return
            await asyncio.sleep(FOLLOW_S)
        self.state.import_finished(True, None)

    async def full_import(
        self, progress: Callable[[int], None] | None = None, *, allow_removals: bool = False
    ) -> ImportReport:
        """One full import; ``progress`` is called with the number of records seen so
        far. ``allow_removals`` removes what the target lacks even when that is more
        than the limit, or everything (an empty or missing target)."""
        async with self._gate.full_import():
            self.state.importing()
            self._started = time.monotonic()
            run_id = await self._space.begin_run(self.name, RunKind.IMPORT)
            log.info(
                "full import started", extra={"action": "import.start", "connector": self.name}
            )
            counts: Counter[str] = Counter()
            seen = 0
            mark = await self._watermark()
            try:
                try:
                    seen = await self._stream(run_id, counts, progress)
                except TargetMissingError as exc:
                    if not allow_removals:
                        missing = f"target missing: {exc}"
                        return await self._refuse(run_id, seen, counts, missing, missing=True)
                removals, total = await self._space.count_unseen(self.name, run_id)
                reason = refusal(seen, removals, total, self._max_removals)
                if reason is not None and not allow_removals:
                    return await self._refuse(run_id, seen, counts, reason)
                counts["removed"] = await self._space.remove_unseen(self.name, run_id)
                await self._space.analyze()
                if mark is not None:  # later deltas read every change made since
                    await self._space.save_watermark(self.name, mark)
            except (TransientError, PermanentError) as exc:
                return await self._finish(run_id, seen, counts, str(exc))
            except Exception as exc:
                await self._close_crashed(run_id, seen, counts, exc)
                raise
            return await self._finish(run_id, seen, counts, None)

    async def _watermark(self) -> str | None:
        """The target's change position before a full import streams, for the deltas
        that follow; None without deltas, or when the target cannot tell (the next
        delta then starts from an older watermark, or falls back to a full import)."""
        if self.deltas is None or Capability.DELTA_IMPORT not in self._connector.capabilities:
            return None
        try:
            return await self._connector.watermark()
        except (TransientError, PermanentError, ConfigError) as exc:
            log.warning(
                "%s: cannot read the watermark for delta imports: %s",
                self.name,
                exc,
                extra={"action": "delta.watermark_unread", "connector": self.name},
            )
            return None

    async def _stream(
        self, run_id: int, counts: Counter[str], progress: Callable[[int], None] | None
    ) -> int:
        """Read the target into batches, each written while the next one is read: the
        database works on one batch (mostly without the GIL) while the connector parses
        the next. The batches still commit one at a time, in order."""
        seen = 0
        batch: list[Record] = []
        writing: tuple[asyncio.Task[Mapping[str, int]], int] | None = None
        progress_at = self._started + PROGRESS_EVERY_S
        try:
            async for record in self._connector.full_import():
                batch.append(record)
                if time.monotonic() >= progress_at:
                    self._log_progress(seen + len(batch))
                    progress_at = time.monotonic() + PROGRESS_EVERY_S
                if len(batch) >= BATCH_SIZE:
                    seen += await _written(writing, counts)
                    if progress and writing is not None:
                        progress(seen)
                    task = self._space.import_records(self.name, run_id, batch)
                    writing, batch = (asyncio.ensure_future(task), len(batch)), []
            seen += await _written(writing, counts)
            writing = None
            if batch:
                counts.update(await self._space.import_records(self.name, run_id, batch))
                seen += len(batch)
        finally:
            if writing is not None:  # the read failed: the batch under way still commits
                await asyncio.wait([writing[0]])
                if not writing[0].cancelled() and writing[0].exception() is None:
                    counts.update(writing[0].result())
        if progress:
            progress(seen)
        return seen

    def _log_progress(self, read: int) -> None:
        elapsed_s = time.monotonic() - self._started
        log.info(
            "full import of %s: %d objects read in %.0f s (%.0f/s)",
            self.name,
            read,
            elapsed_s,
            read / elapsed_s if elapsed_s > 0 else 0.0,
            extra={
                "action": "import.progress",
                "connector": self.name,
                "objects": read,
                "rate_per_s": round(read / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            },
        )

    async def _close_crashed(
        self, run_id: int, seen: int, counts: Counter[str], exc: Exception
    ) -> None:
        """A crash (a bug, a database error) is logged by ``run``, which marks the
        connector degraded; its run is closed as failed too, where the database still
        answers, so that the last import shown is this one and none stays running.
        Its error names the exception's type; the log has the whole of it."""
        self._measure("failed", counts)
        with contextlib.suppress(Exception):
            await self._space.finish_run(
                run_id, RunStatus.FAILED, {"seen": seen, **counts}, f"crashed: {type(exc).__name__}"
            )

    def _measure(self, result: str, counts: Counter[str]) -> None:
        duration_s = time.monotonic() - self._started
        self._metrics.import_finished(self.name, result, duration_s, counts)

    async def _refuse(
        self, run_id: int, seen: int, counts: Counter[str], reason: str, *, missing: bool = False
    ) -> ImportReport:
        message = f"import refused, the view is kept: {reason}"
        report = ImportReport(run_id, False, seen, dict(counts), message, reason, missing)
        await self._space.finish_run(run_id, RunStatus.REFUSED, {"seen": seen, **counts}, message)
        log.error(
            "full import of %s refused, nothing removed: %s; "
            "run `ecmahost import %s --allow-removals` if this is intended",
            self.name,
            reason,
            self.name,
            extra={"action": "import.refused", "connector": self.name, "run_id": run_id},
        )
        self._measure("refused", counts)
        self.state.mark_degraded(f"import refused: {reason}")
        return report

    async def _finish(
        self, run_id: int, seen: int, counts: Counter[str], error: str | None
    ) -> ImportReport:
        report = ImportReport(run_id, error is None, seen, dict(counts), error)
        await self._space.finish_run(
            run_id, RunStatus.OK if report.ok else RunStatus.FAILED, {"seen": seen, **counts}, error
        )
        self._measure("ok" if report.ok else "failed", counts)
        self.state.import_finished(report.ok, error)
        extra = {"action": "import.finished", "connector": self.name, "run_id": run_id}
        if report.ok:
            log.info("full import finished: %d seen, %s", seen, dict(counts), extra=extra)
        else:
            log.error("full import failed after %d records: %s", seen, error, extra=extra)
        return report


async def _written(
    writing: tuple[asyncio.Task[Mapping[str, int]], int] | None, counts: Counter[str]
) -> int:
    """Wait for the batch under way, if any, and count it; its number of records."""
    if writing is None:
        return 0
    task, size = writing
    counts.update(await task)
    return size
