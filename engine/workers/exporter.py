"""The export worker of one connector: claims due events, hands the batch to the
connector, and records each change's outcome (under ``asyncio.shield``, so a
cancelled worker still writes what the target already did)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

from ecmahost.connectors.base import Capability, Change, ChangeKind, Connector, Result
from ecmahost.connectors.exceptions import ConflictError, PermanentError, TransientError
from ecmahost.engine import queue
from ecmahost.engine.config import ConnectorConfig, ExportMode
from ecmahost.engine.metrics import HostMetrics
from ecmahost.engine.notify import Alert, Alerts
from ecmahost.engine.queue import Claim, ErrorKind, Outcome, OutcomeStatus, RetryPolicy
from ecmahost.engine.queue.notifier import Notifier
from ecmahost.engine.queue.opening import Opener
from ecmahost.engine.queue.sealed import Sealer
from ecmahost.engine.space.database import unreachable
from ecmahost.engine.space.models import utcnow
from ecmahost.engine.space.store import ConnectorSpace
from ecmahost.engine.workers.gate import RunGate

__all__ = ["Exporter"]

log = logging.getLogger(__name__)

IDLE_POLL_S = 30.0
"""Longest sleep with nothing due: picks up events another process queued."""

LINGER_PER_BATCH = 4.0
"""Queued mode: after a batch that took d seconds (its claim, export and record),
changes gather for 4·d (at least ``export_linger_s``, at most ``MAX_LINGER_S``).
While changes keep coming, a target whose batches cost more (a larger CSV file
rewritten whole) is then busy a fifth of the time, each of its batches carrying more
changes, instead of taking the CPU the SCIM requests need: at 100,000 rows a fixed
0.2 s gave batches of a few hundred."""

MAX_LINGER_S = 10.0
"""The longest a batch's own time holds the next one back."""


class Exporter:
    """``workers`` loops claim disjoint objects, so different objects export
    concurrently while each object's events stay in order."""

    def __init__(
        self,
        name: str,
        connector: Connector,
        space: ConnectorSpace,
        config: ConnectorConfig,
        gate: RunGate,
        outcomes: Notifier[int, Outcome] | None = None,
        *,
        metrics: HostMetrics | None = None,
        alerts: Alerts | None = None,
        carried: frozenset[str] = frozenset(),
        sealer: Sealer | None = None,
    ) -> None:
        self.name = name
        self._carried = carried  # export-only attributes: see ``queue.coalesce``
        self._opener = Opener(sealer, carried)
        self._connector = connector
        self._space = space
        self._policy = RetryPolicy(
            config.retry_base_s, config.retry_cap_s, config.retry_max_attempts
        )
        self._batch_size = config.export_batch_size or connector.export_batch_size
        self._workers = config.export_workers
        self._lease_s = config.export_lease_s
        # Never in sync mode, where each SCIM answer waits for its change's export.
        queued = config.export_mode is ExportMode.QUEUED
        self._linger_s = config.export_linger_s if queued else 0.0
        self._gate = gate
        self._wake = asyncio.Event()
        # Each recorded outcome is published here under each of its event ids.
        self._outcomes: Notifier[int, Outcome] = outcomes if outcomes is not None else Notifier()
        self.announce: Callable[[list[int]], None] | None = None
        """Set on a shared space in sync mode: tells the other hosts which events have
        an outcome, as a write waiting for one may be theirs."""
        self._recording: set[asyncio.Future[None]] = set()
        self._metrics = metrics if metrics is not None else HostMetrics()
        self._alerts = alerts if alerts is not None else Alerts(None)

    def wake(self) -> None:
        """New events are queued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Export with every worker until cancelled."""
        async with asyncio.TaskGroup() as workers:
            for _ in range(self._workers):
                workers.create_task(self._work())

    async def _work(self) -> None:
        while True:
            self._wake.clear()
            try:
                exported, batch_s = await self._drain()
                if exported:
                    await self._linger(exported, batch_s)
                    continue
                timeout_s = await self._next_due_s()
            except Exception as exc:  # the loop must outlive any one failure
                if unreachable(exc):  # the database is down or restarting: no bug of ours
                    log.warning(
                        "exports wait: the connector space's database cannot be reached (%s)",
                        type(exc).__name__,
                        extra={"action": "export.space_unreachable", "connector": self.name},
                    )
                else:
                    log.exception("export loop error", extra={"action": "export.loop_error"})
                timeout_s = IDLE_POLL_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout_s)

    async def drain_once(self) -> int:
        """Export one batch of due objects; returns how many objects it exported."""
        exported, _ = await self._drain()
        return exported

    async def _drain(self) -> tuple[int, float]:
        """``drain_once``, with the seconds the batch took: its claim, the connector's
        call and the record of its outcomes (all of which the SCIM requests wait on or
        share the CPU with), not the wait for a running import."""
        async with self._gate.export():
            began = time.perf_counter()
            claims = await queue.claim(
                self._space, self.name, self._batch_size, self._lease_s, self._carried
            )
            if not claims:
                return 0, 0.0
            started = time.perf_counter()
            results = await self._export(claims)
            batch_s = time.perf_counter() - started
        recording = asyncio.ensure_future(self._record(claims, results, batch_s))
        self._recording.add(recording)
        recording.add_done_callback(self._recording.discard)
        await asyncio.shield(recording)
        return len(claims), time.perf_counter() - began

    async def _linger(self, exported: int, batch_s: float) -> None:
        """After a batch that left no backlog, let the changes arriving meanwhile gather
        into the next one: a target that pays per batch (a CSV file rewritten whole,
        a transaction) then pays once for many, and the more a batch cost, the longer
        (``LINGER_PER_BATCH``). A change arriving after a quiet spell is still
        exported at once."""
        if self._linger_s and exported < self._batch_size:
            grown = min(LINGER_PER_BATCH * batch_s, MAX_LINGER_S)
            await asyncio.sleep(max(self._linger_s, grown))

    async def close(self) -> None:
        """After the workers were cancelled: let outcomes being recorded finish."""
        await asyncio.gather(*self._recording, return_exceptions=True)

    async def _export(self, claims: Sequence[Claim]) -> Sequence[Result]:
        # Sealed values (passwords) are opened for the connector's call alone; its
        # errors come back scrubbed of them (see ``queue.opening``).
        opened = self._opener.open(claims)
        changes = [c for c in opened.changes if c is not None]
        results = await self._export_opened(changes, opened.any_secret)
        return opened.results(results)

    async def _export_opened(self, changes: Sequence[Change], secret: bool) -> Sequence[Result]:
        if not changes:
            return []
        try:
            results = await self._connector.export(changes)
        except (TransientError, PermanentError) as exc:
            return [Result(c.anchor, exc) for c in changes]
        except Exception as exc:  # a connector bug: keep the events, retry later
            # A traceback may quote a password the batch carries: without one then.
            log.error(
                "connector export crashed: %s",
                type(exc).__name__,
                exc_info=not secret,
                extra={"action": "export.crash"},
            )
            error = TransientError(f"connector error: {type(exc).__name__}: {exc}")
            return [Result(c.anchor, error) for c in changes]
        if len(results) != len(changes):
            error = TransientError(f"connector returned {len(results)} results for {len(changes)}")
            return [Result(c.anchor, error) for c in changes]
        return results

    async def _record(
        self, claims: Sequence[Claim], results: Sequence[Result], batch_s: float
    ) -> None:
        done: list[Claim] = []
        failed: list[tuple[Claim, str, ErrorKind]] = []
        retries: list[tuple[Claim, str, float]] = []
        assigned_to = await self._assigned_anchor()
        for item, result in zip(claims, results, strict=True):
            if result.error is None:
                done.append(_bound(item, result, assigned_to))
                continue
            message = str(result.error) or type(result.error).__name__
            if isinstance(result.error, PermanentError):
                conflict = isinstance(result.error, ConflictError)
                kind = ErrorKind.CONFLICT if conflict else ErrorKind.PERMANENT
                failed.append((item, message, kind))
                continue
            decision = self._policy.decide(item.attempts + 1)
            if decision.retry:
                retries.append((item, message, decision.delay_s))
            else:
                failed.append(
                    (
                        item,
                        f"{message} (gave up after {item.attempts + 1} attempts)",
                        ErrorKind.TRANSIENT,
                    )
                )
        await queue.record(self._space, done, failed, retries)
        self._log_and_notify(done, failed, retries, batch_s)
        if self.announce is not None:
            self.announce([i for c in claims for i in c.event_ids])

    def _log_and_notify(
        self,
        done: list[Claim],
        failed: list[tuple[Claim, str, ErrorKind]],
        retries: list[tuple[Claim, str, float]],
        batch_s: float,
    ) -> None:
        self._metrics.export_outcomes(
            self.name,
            [(c.change.kind.value, OutcomeStatus.DONE.value) for c in done]
            + [(c.change.kind.value, OutcomeStatus.FAILED.value) for c, _, _ in failed]
            + [(c.change.kind.value, OutcomeStatus.RETRYING.value) for c, _, _ in retries],
            batch_s,
        )
        for item in done:
            self._audit(item, OutcomeStatus.DONE)
            self._notify(item, Outcome(OutcomeStatus.DONE))
        for item, message, kind in failed:
            self._audit(item, OutcomeStatus.FAILED, message)
            self._alerts.send(
                Alert(
                    "export.failed",
                    self.name,
                    {
                        "scim_id": item.object_id,
                        "anchor": item.change.anchor,
                        "operation": item.change.kind.value,
                        "error": message,
                        "error_kind": kind.value,
                    },
                )
            )
            log.warning(
                "export failed: %s %s: %s",
                item.change.kind.value,
                item.change.anchor,
                message,
                extra={"action": "export.failed", "connector": self.name},
            )
            self._notify(item, Outcome(OutcomeStatus.FAILED, message, kind))
        for item, message, delay_s in retries:
            self._audit(item, OutcomeStatus.RETRYING, message)
            log.info(
                "export will retry in %.1fs: %s: %s",
                delay_s,
                item.change.anchor,
                message,
                extra={"action": "export.retry", "connector": self.name},
            )
            self._notify(item, Outcome(OutcomeStatus.RETRYING, message, ErrorKind.TRANSIENT))
        log.info(
            "exported %d, failed %d, retrying %d",
            len(done),
            len(failed),
            len(retries),
            extra={"action": "export.batch", "connector": self.name},
        )

    def _audit(self, item: Claim, result: OutcomeStatus, error: str | None = None) -> None:
        """The audit line of one change's outcome: who, what, how it went."""
        log.info(
            "export %s: %s %s",
            result.value,
            item.change.kind.value,
            item.change.anchor,
            extra={
                "action": "export.audit",
                "connector": self.name,
                "scim_id": item.object_id,
                "anchor": item.change.anchor,
                "operation": item.change.kind.value,
                "result": result.value,
                "error": error,
            },
        )

    def _notify(self, item: Claim, outcome: Outcome) -> None:
        for event_id in item.event_ids:
            self._outcomes.publish(event_id, outcome)

    async def _assigned_anchor(self) -> str | None:
        """The anchor attribute when the target assigns it, else None."""
        if Capability.ASSIGNS_ANCHOR not in self._connector.capabilities:
            return None
        anchor = (await self._connector.schema()).anchor
        return anchor.name if anchor.assigned else None

    async def _next_due_s(self) -> float:
        due = await queue.next_due(self._space, self.name)
        if due is None:
            return IDLE_POLL_S
        return min(IDLE_POLL_S, max(0.01, (due - utcnow()).total_seconds()))


def _bound(item: Claim, result: Result, assigned_to: str | None) -> Claim:
    """The claim as delivered: when the target assigned the anchor (a create, a move of
    a DN anchor) or held another than the change asked for, it names the target's
    anchor, so the space binds the object to it."""
    change = item.change
    if assigned_to is None or change.kind is ChangeKind.DELETE or not result.anchor:
        return item
    if result.anchor == change.anchor and change.attributes.get(assigned_to) == result.anchor:
        return item  # nothing new: the object shows this anchor already
    bound = dataclasses.replace(
        change,
        anchor=result.anchor,
        attributes={**change.attributes, assigned_to: result.anchor},
        previous_anchor=None,
    )
    return dataclasses.replace(item, change=bound, assigned_to=assigned_to)
