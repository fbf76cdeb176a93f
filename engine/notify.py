"""Alerts to a webhook (``host.notify_url``): a JSON POST when an export fails for
good, when a connector becomes degraded and when it recovers.

Sending never blocks the caller: ``send`` puts the alert on a bounded queue (the
oldest is dropped when it is full) and one task posts them in order, trying each a
few times with back-off. A receiver that is down costs alerts, never exports."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

__all__ = ["Alert", "Alerts", "safe_url"]

log = logging.getLogger(__name__)

MAX_QUEUED = 1000
TRIES = 5
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0
TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: ``event`` is ``export.failed``, ``connector.degraded`` or
    ``connector.recovered``; ``detail`` says what happened."""

    event: str
    connector: str
    detail: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def body(self, host: str) -> dict[str, Any]:
        return {
            "event": self.event,
            "connector": self.connector,
            "host": host,
            "at": self.at.replace("+00:00", "Z"),
            "detail": self.detail,
        }


def safe_url(url: str) -> str:
    """The URL without credentials, query or fragment: what a log may show."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


class Alerts:
    """Posts alerts to ``url``; without one, ``send`` does nothing."""

    def __init__(
        self,
        url: str | None,
        *,
        max_queued: int = MAX_QUEUED,
        tries: int = TRIES,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        self._url = url
        self._queued: deque[Alert] = deque(maxlen=max_queued)
        self._ready = asyncio.Event()
        self._tries = tries
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._host = socket.gethostname()

    @property
    def enabled(self) -> bool:
        return self._url is not None

    def send(self, alert: Alert) -> None:
        """Queue ``alert``; never waits. A full queue drops its oldest alert."""
        if self._url is None:
            return
        if len(self._queued) == self._queued.maxlen:
            log.warning(
                "alert queue full, oldest alert dropped",
                extra={"action": "notify.dropped", "connector": self._queued[0].connector},
            )
        self._queued.append(alert)
        self._ready.set()

    async def run(self) -> None:
        """Post queued alerts until cancelled."""
        if self._url is None:
            return
        log.info("alerts go to %s", safe_url(self._url), extra={"action": "notify.start"})
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await self._ready.wait()
                self._ready.clear()
                while self._queued:
                    await self._deliver(session, self._queued.popleft())

    async def _deliver(self, session: aiohttp.ClientSession, alert: Alert) -> None:
        assert self._url is not None
        delay_s = self._first_delay_s
        for attempt in range(1, self._tries + 1):
            problem = await self._post(session, alert)
            if problem is None:
                return
            if attempt == self._tries:
                break
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self._max_delay_s)
        log.error(
            "alert %s not delivered to %s after %d tries: %s",
            alert.event,
            safe_url(self._url),
            self._tries,
            problem,
            extra={"action": "notify.failed", "connector": alert.connector},
        )

    async def _post(self, session: aiohttp.ClientSession, alert: Alert) -> str | None:
        """None once the receiver took the alert (2xx), else what went wrong."""
        assert self._url is not None
        try:
            async with session.post(self._url, json=alert.body(self._host)) as response:
                if response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # str(exc) of a client error may quote the URL, query string included.
            return type(exc).__name__
