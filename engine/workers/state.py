"""What one connector is doing right now, for ``/health`` and the SCIM front-end.

The host creates one ``ConnectorState`` per configured connector; the host's start-up
and the importer move it between phases, ``/health?detail=1`` reads it. Anything that
finds a connector unfit to serve writes (an import refused, a target that is gone)
calls ``mark_degraded(reason)``; the next good import sets it serving again.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ConnectorState", "Phase"]


class Phase(enum.Enum):
    IMPORTING = "importing"
    """An import runs (the first one, or one after the connector was degraded)."""
    SERVING = "serving"
    DEGRADED = "degraded"
    """Reads are answered from the space; ``reason`` says what is wrong."""


@dataclass(slots=True)
class ConnectorState:
    """Phase and reason of one connector; ``filled`` is whether its space holds a
    finished import (reads before that are answered 503 + ``Retry-After``)."""

    name: str
    phase: Phase = Phase.IMPORTING
    reason: str | None = None
    filled: bool = False
    up: bool = False
    """The connector is open and its runtime (schema, workers) is in ``Host.runtimes``."""
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once start-up is over for this connector: it serves, or is degraded."""
    on_change: Callable[[ConnectorState, Phase], None] | None = None
    """Called with the state and its previous phase when the connector becomes
    degraded or stops being degraded (the host's alerts)."""

    def connected(self) -> None:
        """The connector opened: its runtime is in ``Host.runtimes``; the start-up
        import follows (a reason from before the opening no longer holds)."""
        self.up = True
        self._moved(Phase.IMPORTING)
        self.reason = None

    def importing(self) -> None:
        """An import started. A degraded connector stays degraded (with its reason)
        until an import succeeds: the reason is still true while it runs."""
        if self.phase is not Phase.DEGRADED:
            self.phase = Phase.IMPORTING

    def serving(self) -> None:
        """All is well: reads and writes go through."""
        self._moved(Phase.SERVING)
        self.reason = None
        self.settled.set()

    def mark_degraded(self, reason: str) -> None:
        """Something is wrong with the connector (``reason`` tells the operator what);
        it keeps answering reads from its space and queueing writes."""
        self.reason = reason
        self._moved(Phase.DEGRADED)
        self.settled.set()

    def _moved(self, phase: Phase) -> None:
        before, self.phase = self.phase, phase
        entered_or_left = (before is Phase.DEGRADED) != (phase is Phase.DEGRADED)
        if entered_or_left and self.on_change is not None:
            self.on_change(self, before)

    def import_finished(self, ok: bool, error: str | None) -> None:
        """An import ended: a good one fills the space and clears any degradation."""
        if ok:
            self.filled = True
            self.serving()
        else:
            self.mark_degraded(f"import failed: {error}")

    @property
    def answers_reads(self) -> bool:
        return self.up and self.filled
