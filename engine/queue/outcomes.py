"""What became of exports: recording a batch's outcomes, and reading an event's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from ecmahost.connectors.base import ChangeKind
from ecmahost.engine.queue.claims import Claim
from ecmahost.engine.space.contract import Store
from ecmahost.engine.space.erasure import without_sealed
from ecmahost.engine.space.models import utcnow
from ecmahost.engine.space.records import Delivered, EventState, Failure, Retry
from ecmahost.engine.space.states import ErrorKind, EventStatus

__all__ = ["Outcome", "OutcomeStatus", "outcome", "outcome_from", "record"]


class OutcomeStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"
    DISCARDED = "discarded"
    RETRYING = "retrying"
    """an attempt failed for now; the event stays queued"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of an event."""

    status: OutcomeStatus
    error: str | None = None
    error_kind: ErrorKind | None = None


_FINAL = {
    EventStatus.DONE: OutcomeStatus.DONE,
    EventStatus.FAILED: OutcomeStatus.FAILED,
    EventStatus.DISCARDED: OutcomeStatus.DISCARDED,
    # It failed before a newer change took its place: to its writer, still a failure.
    EventStatus.SUPERSEDED: OutcomeStatus.FAILED,
}


async def record(
    space: Store,
    done: Iterable[Claim] = (),
    failed: Iterable[tuple[Claim, str, ErrorKind]] = (),
    retries: Iterable[tuple[Claim, str, float]] = (),
) -> None:
    """Record one batch's outcomes in one transaction: the target took the ``done``
    claims; ``failed`` ones (claim, message, kind) failed for good; ``retries``
    (claim, message, delay_s) are tried again once the delay has passed."""
    now = utcnow()
    await space.events.record(
        [_delivered(c) for c in done],
        [Failure(c.object_id, c.event_ids, message, kind) for c, message, kind in failed],
        [
            Retry(c.object_id, c.event_ids, message, now + timedelta(seconds=delay_s))
            for c, message, delay_s in retries
        ],
    )


def _delivered(claim: Claim) -> Delivered:
    change = claim.change
    # What the target holds, as the space keeps it: sealed values (passwords) never.
    held = None if change.kind is ChangeKind.DELETE else without_sealed(change.attributes)
    return Delivered(claim.object_id, claim.event_ids, change.anchor, held, claim.assigned_to)


async def outcome(space: Store, event_id: int) -> Outcome | None:
    """The event's outcome if it has one yet."""
    return outcome_from(event_id, await space.events.state(event_id))


def outcome_from(event_id: int, found: EventState | None) -> Outcome | None:
    """The outcome an event's state tells (done, failed, discarded, or a failed
    attempt to be retried), if any yet; an unknown event failed."""
    if found is None:
        return Outcome(OutcomeStatus.FAILED, f"export event {event_id} not found")
    final = _FINAL.get(found.status)
    if final is not None:
        return Outcome(final, found.last_error, found.error_kind)
    if found.error_kind == ErrorKind.TRANSIENT:
        return Outcome(OutcomeStatus.RETRYING, found.last_error, ErrorKind.TRANSIENT)
    return None
