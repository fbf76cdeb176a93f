"""``ecmahost exports list|show|replay|discard``: the export queue from the shell.

Listing pages by id (``--after`` the last id shown), so a long queue is read a page
at a time and a page never shifts under events that finish meanwhile. Replay and
discard check every id first and change nothing when one is unknown or not failed:
a typo must not act on half of a list."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ecmahost.engine import queue
from ecmahost.engine.config import HostConfig
from ecmahost.engine.host import Host
from ecmahost.engine.queue import wakeup
from ecmahost.engine.scim.admin import event_json
from ecmahost.engine.space import ConnectorSpace, cluster
from ecmahost.engine.space.records import EventView
from ecmahost.engine.space.states import EventStatus
from rich.console import Console
from rich.table import Table

__all__ = ["add_commands"]

T = TypeVar("T")
Loader = Callable[..., HostConfig]

DEFAULT_LIMIT = 100
_DURATION = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def add_commands(sub: Any, common: argparse.ArgumentParser, load: Loader) -> None:
    """Add ``exports`` and its actions to the sub-command parsers ``sub``."""
    exports = sub.add_parser("exports", parents=[common], help="inspect and replay queued exports")
    actions = exports.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list export events, oldest first")
    listing.add_argument("--status", choices=[s.value for s in EventStatus])
    listing.add_argument("--failed", action="store_true", help="same as --status failed")
    listing.add_argument("--connector")
    listing.add_argument(
        "--since", type=since_time, help="changed since: 2026-12-01, 2026-12-01T08:00, 90m, 2h, 7d"
    )
    listing.add_argument("--limit", type=_positive, default=DEFAULT_LIMIT, help="events per page")
    listing.add_argument("--after", type=int, metavar="ID", help="the page after this event id")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=lambda a: _list(a, load(a, secrets=False)))
    show = actions.add_parser("show", parents=[common], help="one event, its payload and history")
    show.add_argument("id", type=int)
    show.set_defaults(func=lambda a: _show(a.id, load(a, secrets=False)))
    replay = actions.add_parser("replay", parents=[common], help="queue failed events again")
    replay.add_argument("ids", nargs="*", type=int)
    replay.add_argument("--all", action="store_true", help="every failed event")
    replay.set_defaults(func=lambda a: _replay(a, load))
    discard = actions.add_parser(
        "discard", parents=[common], help="give up on failed events (kept as discarded)"
    )
    discard.add_argument("ids", nargs="+", type=int)
    discard.set_defaults(func=lambda a: _discard(a.ids, load(a)))


def since_time(text: str) -> datetime:
    """``--since``: an ISO date or time (UTC unless it says otherwise), or an age."""
    if found := _DURATION.fullmatch(text.strip()):
        age = timedelta(**{_UNITS[found[2]]: int(found[1])})
        return datetime.now(UTC).replace(tzinfo=None) - age
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time nor an age (90m, 2h, 7d): {text!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


async def _with_space(config: HostConfig, work: Callable[[ConnectorSpace], Awaitable[T]]) -> T:
    host = Host(config)
    await host.open(connectors=False)
    assert host.space is not None
    try:
        return await work(host.space)
    finally:
        await host.close()


def _list(args: argparse.Namespace, config: HostConfig) -> int:
    status = EventStatus.FAILED if args.failed else args.status and EventStatus(args.status)
    found = asyncio.run(
        _with_space(
            config,
            lambda s: queue.list_events(
                s,
                status=status,
                connector=args.connector,
                limit=args.limit + 1,  # one more tells whether another page follows
                after_id=args.after,
                since=args.since,
            ),
        )
    )
    page, more = found[: args.limit], len(found) > args.limit
    _print_events(page, as_json=args.json)
    if more:
        print(f"more events follow: add --after {page[-1].id} for the next page", file=sys.stderr)
    return 0


def _print_events(events: Sequence[EventView], *, as_json: bool) -> None:
    if as_json:
        for e in events:
            print(json.dumps(event_json(e), ensure_ascii=False))
        return
    table = Table("id", "connector", "status", "op", "anchor", "attempts", "updated", "last error")
    for e in events:
        updated = e.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            str(e.id), e.connector, e.status, e.op, e.anchor, str(e.attempts), updated,
            e.last_error or "",
        )  # fmt: skip
    Console().print(table)


def _show(event_id: int, config: HostConfig) -> int:
    async def show(space: ConnectorSpace) -> dict[str, Any] | None:
        events = await queue.list_events(space, ids=[event_id])
        if not events:
            return None
        return {**event_json(events[0]), "history": await queue.history(space, event_id)}

    shown = asyncio.run(_with_space(config, show))
    if shown is None:
        print(f"ecmahost: error: no export event {event_id}", file=sys.stderr)
        return 1
    print(json.dumps(shown, ensure_ascii=False, indent=2))
    return 0


def _replay(args: argparse.Namespace, load: Loader) -> int:
    if not args.all and not args.ids:
        print("ecmahost: error: name event ids or --all", file=sys.stderr)
        return 2
    config = load(args)
    ids = None if args.all else args.ids
    return _act(config, ids, queue.replay, "queued again")


def _discard(ids: list[int], config: HostConfig) -> int:
    return _act(config, ids, queue.discard, "discarded")


def _act(
    config: HostConfig,
    ids: list[int] | None,
    action: Callable[[ConnectorSpace, Any], Awaitable[list[int]]],
    done: str,
) -> int:
    async def checked(space: ConnectorSpace) -> tuple[list[str], list[int]]:
        problems = [] if ids is None else await _not_failed(space, ids)
        return problems, [] if problems else await action(space, ids)

    problems, moved = asyncio.run(_with_space(config, checked))
    for problem in problems:
        print(f"ecmahost: error: {problem}", file=sys.stderr)
    if problems:
        print("ecmahost: nothing changed", file=sys.stderr)
        return 1
    # The serving hosts act on them now, not at their poll.
    if config.shared_database:
        asyncio.run(cluster.tell_once(config.database_url, "wake"))
    else:
        wakeup.poke(config.state_dir)
    print(f"{done}: {len(moved)} event(s) {' '.join(map(str, moved))}".rstrip())
    return 0


async def _not_failed(space: ConnectorSpace, ids: list[int]) -> list[str]:
    """What is wrong with each id that names no failed event."""
    found = {e.id: e for e in await queue.list_events(space, ids=ids, limit=len(ids))}
    problems = []
    for event_id in dict.fromkeys(ids):
        event = found.get(event_id)
        if event is None:
            problems.append(f"no export event {event_id}")
        elif event.status != EventStatus.FAILED:
            problems.append(f"export event {event_id} is {event.status}, not failed")
    return problems
