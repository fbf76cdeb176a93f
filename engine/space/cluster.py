"""Several hosts on one PostgreSQL connector space: who is up, who imports, and word
between them.

Each host keeps one connection of its own to the database, beside the space's pool:

* a heartbeat row in ``cluster_hosts`` every ``HEARTBEAT_S``;
* per connector, a session advisory lock: the host holding it runs that connector's
  imports and schedules. PostgreSQL drops the lock with the connection, so when the
  leader dies another host takes the lock at its next heartbeat;
* ``LISTEN``/``NOTIFY`` on one channel: an export's outcome for a host whose request
  waits for it, a wake-up for the exporters (a replay, a discard), an import asked
  of a host that does not lead it.

A host on SQLite is alone: it leads every connector and tells no one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from ecmahost.engine.space.point_reads import asyncpg_dsn

__all__ = [
    "CHANNEL",
    "HEARTBEAT_S",
    "Cluster",
    "Member",
    "import_lock",
    "members",
    "tell_once",
]

log = logging.getLogger(__name__)

CHANNEL = "ecmahost"
HEARTBEAT_S = 2.0
"""How often a host writes its heartbeat and tries for the locks of connectors no
one leads: the longest a connector goes without an importer after its leader died."""
STALE_S = 10.0
"""A host whose heartbeat is older than this is listed as gone."""
_PAYLOAD_BYTES = 7000
"""Below NOTIFY's limit of 8,000 bytes a payload, with room for the message's head."""

# The database's clock, not each host's: heartbeats are compared with one another.
_NOW = "(now() AT TIME ZONE 'utc')"
_UPSERT_SELF = (
    "INSERT INTO cluster_hosts (id, name, pid, started_at, heartbeat_at, leads) "
    f"VALUES ($1, $2, $3, {_NOW}, {_NOW}, $4) "
    f"ON CONFLICT (id) DO UPDATE SET heartbeat_at = {_NOW}, leads = $4"
)
_MEMBERS = (
    "SELECT id, name, pid, started_at, heartbeat_at, leads, "
    f"extract(epoch FROM {_NOW} - heartbeat_at) AS age_s "
    "FROM cluster_hosts ORDER BY name, started_at"
)
_OTHERS = "SELECT id, leads FROM cluster_hosts WHERE id <> $1"
_SET_LEADS = "UPDATE cluster_hosts SET leads = $2 WHERE id = $1"
_LOCK = "SELECT pg_try_advisory_lock(hashtext('ecmahost-import:' || $1))"


@dataclass(frozen=True, slots=True)
class Member:
    """A host of the cluster, as its last heartbeat left it."""

    id: str
    name: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    leads: tuple[str, ...]
    age_s: float
    """Seconds since the heartbeat, by the database's clock."""

    @property
    def alive(self) -> bool:
        return self.age_s < STALE_S

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "pid": self.pid,
            "started_at": self.started_at.isoformat() + "Z",
            "heartbeat_age_s": round(self.age_s, 1),
            "alive": self.alive,
            "imports": list(self.leads),
        }


Heard = Callable[[str, list[str]], None]
"""Called with a message's kind and its words."""


class Cluster:
    """This host's membership. ``url`` None: the space is SQLite, and this host alone."""

    def __init__(self, url: str | None, connectors: Iterable[str], heard: Heard) -> None:
        self._dsn = None if url is None else asyncpg_dsn(url)
        self._connectors = tuple(connectors)
        self._heard = heard
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._leading: set[str] = set()
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one operation at a time on the connection

    @property
    def shared(self) -> bool:
        return self._dsn is not None

    def leads(self, connector: str) -> bool:
        """Whether this host runs ``connector``'s imports now."""
        return self._dsn is None or connector in self._leading

    async def run(self) -> None:
        """Keep the membership until cancelled: connect, listen, beat, lead; after a
        lost connection (the database restarted), the same again. Nothing on SQLite."""
        if self._dsn is None:
            return
        while True:
            try:
                if self._connection is None:
                    await self._connect()
                while True:
                    await self._beat()
                    await asyncio.sleep(HEARTBEAT_S)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if self._leading:
                    log.warning(
                        "lost the cluster connection (%s): no longer running the imports of %s",
                        exc,
                        ", ".join(sorted(self._leading)),
                        extra={"action": "cluster.lost"},
                    )
                self._leading.clear()
                await self._disconnect()
                await asyncio.sleep(HEARTBEAT_S)

    async def join(self) -> None:
        """Connect and beat once, so that this host knows which connectors it leads
        before it brings them up (the one leading imports at start)."""
        if self._dsn is not None:
            await self._connect()
            await self._beat()

    async def tell(self, kind: str, *words: str) -> None:
        """Send a message to every host (this one included); dropped while this host
        has no connection: a lost wake-up costs a poll, a lost outcome a second (the
        waiting write reads it again, ``provisioning.OUTCOME_RECHECK_S``)."""
        if self._dsn is None or self._connection is None:
            return
        for payload in _payloads(kind, words):
            try:
                async with self._lock:
                    await self._connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("cluster message %s not sent: %s", kind, exc)
                return

    async def close(self) -> None:
        """Leave: the row goes, and with the connection the locks."""
        if self._connection is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                async with self._lock:
                    await self._connection.execute(
                        "DELETE FROM cluster_hosts WHERE id = $1", self.id
                    )
        await self._disconnect()

    async def _connect(self) -> None:
        assert self._dsn is not None
        self._connection = await asyncpg.connect(self._dsn)
        await self._connection.add_listener(CHANNEL, self._on_notification)

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await connection.close(timeout=2)

    async def _beat(self) -> None:
        assert self._connection is not None
        async with self._lock:
            for connector in self._connectors:
                if connector not in self._leading and await self._connection.fetchval(
                    _LOCK, connector
                ):
                    self._leading.add(connector)
                    await self._take_over(connector)
                    log.info(
                        "this host now runs the imports of %s",
                        connector,
                        extra={"action": "cluster.lead", "connector": connector},
                    )
            await self._connection.execute(
                _UPSERT_SELF,
                self.id,
                socket.gethostname(),
                os.getpid(),
                json.dumps(sorted(self._leading)),
            )

    async def _take_over(self, connector: str) -> None:
        """The lock is this host's: a host that held it before and died keeps its row
        until it is stale, but no longer names the connector."""
        assert self._connection is not None
        for row in await self._connection.fetch(_OTHERS, self.id):
            leads = _leads(row["leads"])
            if connector in leads:
                kept = json.dumps([name for name in leads if name != connector])
                await self._connection.execute(_SET_LEADS, row["id"], kept)

    def _on_notification(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        kind, *words = payload.split(" ")
        try:
            self._heard(kind, words)
        except Exception:  # a message must never take the listener down
            log.exception("cluster message %s not handled", kind)


async def members(url: str) -> list[Member]:
    """The hosts of the cluster on ``url``'s database, by name."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch(_MEMBERS)
    finally:
        await connection.close()
    return [
        Member(
            r["id"],
            r["name"],
            r["pid"],
            r["started_at"],
            r["heartbeat_at"],
            _leads(r["leads"]),
            float(r["age_s"]),
        )
        for r in rows
    ]


@contextlib.asynccontextmanager
async def import_lock(url: str, connector: str) -> AsyncIterator[bool]:
    """Hold ``connector``'s import lock for a process that is no host (``ecmahost
    import``); yields False when a host holds it (leads the connector's imports)."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        yield bool(await connection.fetchval(_LOCK, connector))
    finally:
        await connection.close()  # the lock goes with the session


async def tell_once(url: str, kind: str, *words: str) -> None:
    """Send one message from a process that is no host (the command line)."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for payload in _payloads(kind, words):
            await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
    finally:
        await connection.close()


def _leads(stored: str | list[str]) -> tuple[str, ...]:
    return tuple(json.loads(stored) if isinstance(stored, str) else stored)


def _payloads(kind: str, words: Iterable[str]) -> list[str]:
    """``kind`` and ``words`` as messages under NOTIFY's size limit: long lists (the
    outcomes of a large batch) are split, each message repeating the first word."""
    words = list(words)
    if len(" ".join(words)) <= _PAYLOAD_BYTES:
        return [" ".join([kind, *words])]
    head, rest = words[0], words[1:]
    payloads: list[str] = []
    chunk: list[str] = []
    size = 0
    for word in rest:
        if chunk and size + len(word) + 1 > _PAYLOAD_BYTES:
            payloads.append(" ".join([kind, head, *chunk]))
            chunk, size = [], 0
        chunk.append(word)
        size += len(word) + 1
    payloads.append(" ".join([kind, head, *chunk]))
    return payloads
