"""Server limits: what a client may hold open, and for how long.

aiohttp's server has no timeout for headers that never finish, none for a body that
stalls, and no cap on connections; asyncio's accept loop logs every failed
``accept()`` (with a traceback) as fast as the listening socket wakes it. Here the
host accepts connections itself, so that:

* beyond ``max_connections`` a new connection is closed at once, in the accept loop,
  before the next one is taken: the descriptors in use never exceed the cap plus the
  host's own, however fast clients connect;
* an accept error (EMFILE and the like) pauses accepting for a moment and is logged at
  most once per ``LOG_INTERVAL_S``, with a count of the lines it stands for;
* each connection must send a request's headers within ``header_timeout_s`` of its
  opening (or, on a kept-alive connection, of the next request's first byte), and its
  body within ``body_timeout_s`` of its headers (408, then closed); the TLS handshake
  is bounded by the header timeout too; idle keep-alive is aiohttp's own timer;
* a request the parser refuses (a header over 8 KB, a garbled request line) gets a
  short plain 400 that repeats nothing the client sent: aiohttp's own page quotes
  the offending line, a bearer token included.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from ecmahost.engine.config import HostSettings

__all__ = [
    "FD_HEADROOM",
    "LOG_INTERVAL_S",
    "Listeners",
    "RateLimitedLog",
    "listen",
    "raise_open_files_limit",
]

log = logging.getLogger(__name__)

FD_HEADROOM = 64
"""Descriptors the host needs besides its connections: the database and its journal
files (per pooled connection), the lock and wake-up files, the event loop's own,
connector files, sockets and script pipes. A host serving one CSV connector uses
about 20."""

LOG_INTERVAL_S = 10.0
"""The most often one kind of limit line is logged; the next one counts the rest."""

ACCEPT_RETRY_S = 0.5
"""How long accepting pauses after the system refused a descriptor (as asyncio does):
retrying at once would spin, since the listening socket stays readable."""

BACKLOG = 128
"""Connections the kernel holds for us while accepting pauses (aiohttp's default)."""

ACCEPT_BATCH = 64
"""Connections taken per wake-up of a listening socket, so requests in flight get
their turn between two batches."""

_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

_BAD_REQUEST = "bad request\n"


def raise_open_files_limit(max_connections: int) -> None:
    """Raise the soft open-files limit towards ``max_connections`` + ``FD_HEADROOM``
    as far as the hard limit allows; warn once if the connections cannot fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + FD_HEADROOM
    reachable = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < reachable:
        resource.setrlimit(resource.RLIMIT_NOFILE, (reachable, hard))
        log.info(
            "open-files limit raised from %d to %d",
            soft,
            reachable,
            extra={"action": "host.limits", "open_files": reachable},
        )
        soft = reachable
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "max_connections = %d does not fit under the open-files limit %d (the host"
            " needs about %d more); lower it or raise LimitNOFILE / ulimit -n",
            max_connections,
            soft,
            FD_HEADROOM,
            extra={"action": "host.limits", "open_files": soft},
        )


@dataclass
class RateLimitedLog:
    """One kind of line, logged at most once per ``interval_s``; the next line that
    gets through says how many were held back meanwhile."""

    level: int
    action: str
    interval_s: float = LOG_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    suppressed: int = field(default=0, init=False)
    _last_at: float | None = field(default=None, init=False)

    def __call__(self, message: str, *args: object) -> None:
        now = self.clock()
        if self._last_at is not None and now - self._last_at < self.interval_s:
            self.suppressed += 1
            return
        self._last_at = now
        held, self.suppressed = self.suppressed, 0
        if held:
            message += " (%d more since the last such line)"
            args = (*args, held)
        log.log(self.level, message, *args, extra={"action": self.action})


@dataclass
class _Logs:
    accept: RateLimitedLog = field(
        default_factory=lambda: RateLimitedLog(logging.ERROR, "http.accept_error")
    )
    refused: RateLimitedLog = field(
        default_factory=lambda: RateLimitedLog(logging.WARNING, "http.refused")
    )
    timeout: RateLimitedLog = field(
        default_factory=lambda: RateLimitedLog(logging.INFO, "http.timeout")
    )
    malformed: RateLimitedLog = field(
        default_factory=lambda: RateLimitedLog(logging.INFO, "http.bad_request")
    )


@dataclass
class _Slots:
    """Open connections, counted from accept to close."""

    limit: int
    used: int = field(default=0, init=False)

    def take(self) -> bool:
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def give_back(self) -> None:
        self.used -= 1


class _Connection(web.RequestHandler):
    """aiohttp's connection protocol with the header and body deadlines."""

    def __init__(
        self, server: web.Server, settings: HostSettings, logs: _Logs, release: Callable[[], None]
    ) -> None:
        super().__init__(
            server,
            loop=asyncio.get_running_loop(),
            keepalive_timeout=settings.keepalive_timeout_s,
            # The error middleware logs each request once; None turns aiohttp's off
            # (as AppRunner(access_log=None) does), though its signature says Logger.
            access_log=None,  # type: ignore[arg-type]
        )
        self._settings = settings
        self._logs = logs
        self._release: Callable[[], None] | None = release
        self._busy = False  # a request's handler runs
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_late = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        # A kept-alive connection's next request: its headers are due from its first byte.
        if data and not self._busy and self._head_timer is None:
            self._start_head_timer()
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        if self._release is not None:
            self._release()
            self._release = None
        super().connection_lost(exc)

    def request_started(self, request: web.BaseRequest) -> None:
        """The request's headers are in: from here its body is due."""
        self._busy = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._body_timer is not None:  # the last request's, its body long complete
            self._body_timer.cancel()
            self._body_timer = None
        if not request.content.is_eof():
            self._body_timer = asyncio.get_running_loop().call_later(
                self._settings.body_timeout_s, self._body_timed_out, request.content
            )

    def request_finished(self, request: web.BaseRequest) -> None:
        self._busy = False
        if self._body_late:
            # The client stalled: nothing is left to drain, and draining would wait
            # (aiohttp reads an unread body for a while before closing).
            request.content.feed_eof()
        elif self._body_timer is not None and request.content.is_eof():
            self._body_timer.cancel()
            self._body_timer = None

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status != 400:
            return super().handle_error(request, status, exc, message)
        # The parser's message quotes what it refused: neither the answer nor the log
        # may carry it.
        self._logs.malformed(
            "refused a malformed request from %s (%s)", request.remote, type(exc).__name__
        )
        response = web.Response(status=400, text=_BAD_REQUEST)
        response.force_close()
        return response

    def _start_head_timer(self) -> None:
        self._head_timer = asyncio.get_running_loop().call_later(
            self._settings.header_timeout_s, self._head_timed_out
        )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is None or self._busy:
            return
        self._logs.timeout(
            "closed a connection that sent no complete headers within %g s",
            self._settings.header_timeout_s,
        )
        self.force_close()

    def _body_timed_out(self, content: StreamReader) -> None:
        self._body_timer = None
        if content.is_eof() or self.transport is None:
            return
        self._body_late = True
        self.close()  # no further request on this connection; it ends after the answer
        if self._busy:
            # The handler's read fails with a 408, which the error middleware answers.
            content.set_exception(web.HTTPRequestTimeout())
        else:
            content.feed_eof()


class _Listener:
    """Accepts on one listening socket and hands each connection to ``admit``."""

    def __init__(
        self, sock: socket.socket, admit: Callable[[socket.socket], None], logs: _Logs
    ) -> None:
        self._sock = sock
        self._admit = admit
        self._logs = logs
        self._loop = asyncio.get_running_loop()
        self._retry: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._sock.listen(BACKLOG)
        self._sock.setblocking(False)
        self._loop.add_reader(self._sock.fileno(), self._accept)

    def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()  # a client is refused now, not left waiting in the backlog

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # gone before we took it
            except OSError as exc:
                self._accept_failed(exc)
                return
            self._admit(conn)

    def _accept_failed(self, exc: OSError) -> None:
        self._logs.accept(
            "cannot accept connections: %s; keep max_connections well under the open-files limit",
            exc.strerror or exc,
        )
        if exc.errno in _OUT_OF_RESOURCES:
            self._loop.remove_reader(self._sock.fileno())
            self._retry = self._loop.call_later(ACCEPT_RETRY_S, self.start)


@dataclass
class Listeners:
    """The host's listening sockets, accepting under the limits until ``stop``."""

    _listeners: list[_Listener]

    def stop(self) -> None:
        for listener in self._listeners:
            listener.stop()


def listen(
    runner: web.AppRunner,
    sockets: list[socket.socket],
    ssl_context: ssl.SSLContext | None,
    settings: HostSettings,
) -> Listeners:
    """Start accepting on ``sockets`` (bound) for ``runner`` (set up)."""
    server = runner.server
    assert server is not None, "the runner is not set up"
    logs = _Logs()
    slots = _Slots(settings.max_connections)
    server.request_handler = _watching(server.request_handler)
    loop = asyncio.get_running_loop()
    opening: set[asyncio.Task[Any]] = set()

    def admit(conn: socket.socket) -> None:
        if not slots.take():
            conn.close()
            logs.refused(
                "refused a connection: %d are open (max_connections)", settings.max_connections
            )
            return
        conn.setblocking(False)
        task = loop.create_task(
            loop.connect_accepted_socket(
                lambda: _Connection(server, settings, logs, slots.give_back),
                conn,
                ssl=ssl_context,
                ssl_handshake_timeout=settings.header_timeout_s if ssl_context else None,
            )
        )
        opening.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(opening.discard)
        task.add_done_callback(lambda done: _handshake_failed(done, conn, slots))

    listeners = [_Listener(sock, admit, logs) for sock in sockets]
    for listener in listeners:
        listener.start()
    return Listeners(listeners)


def _handshake_failed(done: asyncio.Task[Any], conn: socket.socket, slots: _Slots) -> None:
    """A connection that never reached its protocol (a TLS handshake that failed or
    took too long) gives its slot back here; asyncio has closed its socket."""
    if done.cancelled() or done.exception() is not None:
        conn.close()
        slots.give_back()


def _watching(
    handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """``handler`` telling each request's connection when it starts and ends."""

    async def watched(request: web.BaseRequest) -> web.StreamResponse:
        connection = request.protocol
        if not isinstance(connection, _Connection):
            return await handler(request)
        connection.request_started(request)
        try:
            return await handler(request)
        finally:
            connection.request_finished(request)

    return watched
