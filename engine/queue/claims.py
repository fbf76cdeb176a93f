"""Claiming exports: an object's due events, coalesced into the one change that
takes the target from what it holds to the object's newest staged state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecmahost.connectors.base import Change, ChangeKind
from ecmahost.engine.space.contract import Store
from ecmahost.engine.space.records import DueObject, is_pending
from ecmahost.engine.space.states import Op

__all__ = ["Claim", "claim", "coalesce", "next_due", "recover"]


@dataclass(frozen=True, slots=True)
class Claim:
    """One object's claimed events, coalesced into the change to export."""

    connector: str
    object_id: str
    event_ids: tuple[int, ...]
    change: Change
    attempts: int
    assigned_to: str | None = None
    """Set once exported, when the target assigned ``change.anchor``: the anchor
    attribute that holds it (see ``Delivered.assigned_to``)."""


async def claim(
    space: Store,
    connector: str,
    limit: int,
    lease_s: float = 300.0,
    carried: frozenset[str] = frozenset(),
) -> list[Claim]:
    """Claim the due events of up to ``limit`` objects for ``lease_s`` seconds, one
    coalesced change per object (see ``EventStore.claim`` and ``coalesce``)."""
    due = await space.events.claim(connector, limit, lease_s)
    return [coalesce(one, carried) for one in due]


def coalesce(due: DueObject, carried: frozenset[str] = frozenset()) -> Claim:
    """The one change that takes the target from what it holds (under ``held_as``,
    None if nothing) to the newest staged state. ``carried`` names export-only
    attributes: a value an earlier event sent and the newest lacks is still sent."""
    last, held_as = due.events[-1], due.held_as
    payload = _with_carried(due, carried)
    # A pending anchor is the host's placeholder: the target sees none (it assigns one).
    anchor = "" if is_pending(last.anchor) else last.anchor
    if last.op == Op.DELETE:
        change = Change(ChangeKind.DELETE, held_as or anchor)
    elif held_as is None:
        change = Change(ChangeKind.ADD, anchor, payload)
    else:
        anchor = anchor or held_as
        renamed_from = held_as if held_as != anchor else None
        change = Change(ChangeKind.REPLACE, anchor, payload, renamed_from)
    attempts = max(e.attempts for e in due.events)
    return Claim(last.connector, due.object_id, tuple(e.id for e in due.events), change, attempts)


def _with_carried(due: DueObject, carried: frozenset[str]) -> dict[str, Any]:
    """The newest payload, plus the export-only values of the events before it (back
    to a delete) that it lacks: each event exported in turn would have left them in
    the target, since a change without an export-only attribute leaves it alone."""
    payload = dict(due.events[-1].payload)
    for event in reversed(due.events[:-1]):
        if event.op == Op.DELETE:
            break
        for name in carried - payload.keys():
            if name in event.payload:
                payload[name] = event.payload[name]
    return payload


async def next_due(space: Store, connector: str) -> datetime | None:
    """When the earliest claimable event of ``connector`` becomes due (may be past)."""
    return await space.events.next_due(connector)


async def recover(space: Store) -> int:
    """At start-up: events an interrupted process was exporting are queued again."""
    return await space.events.recover()
