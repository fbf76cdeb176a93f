"""The durable export queue: enqueued with each SCIM write (by the store, in the
write's transaction), claimed per object and coalesced, its outcomes recorded,
inspected, replayed and discarded.

Per object, events are exported in id order and coalesced: a claim takes all of an
object's pending events and exports only the newest state. A failed event does not
hold its object: the object's next change supersedes it (it stays listed as
``superseded``) and exports the object's newest state, after the failed attempt, so a
later change never overtakes an earlier one. Retry back-off is per object.

The queue's logic lives here; its statements are the store's (``space.events``).
"""

from ecmahost.engine.queue.claims import Claim, claim, coalesce, next_due, recover
from ecmahost.engine.queue.inspection import (
    discard,
    history,
    list_events,
    recent_outcomes,
    replay,
)
from ecmahost.engine.queue.outcomes import (
    Outcome,
    OutcomeStatus,
    outcome,
    outcome_from,
    record,
)
from ecmahost.engine.queue.retry import Decision, RetryPolicy
from ecmahost.engine.space.records import EventView, OutcomeView
from ecmahost.engine.space.states import OPEN_STATUSES, ErrorKind, EventStatus

__all__ = [
    "OPEN_STATUSES",
    "Claim",
    "Decision",
    "ErrorKind",
    "EventStatus",
    "EventView",
    "Outcome",
    "OutcomeStatus",
    "OutcomeView",
    "RetryPolicy",
    "claim",
    "coalesce",
    "discard",
    "history",
    "list_events",
    "next_due",
    "outcome",
    "outcome_from",
    "recent_outcomes",
    "record",
    "recover",
    "replay",
]
