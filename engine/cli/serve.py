"""``ecmahost serve``: the order of start-up and the graceful stop.

Start-up does the cheap checks that can fail first, each failing in one line and at
once: the state folder's lock (one host per folder), then the listening address
(bound, not yet listening, so the port is ours before a long start-up import).
Once serving, the host accepts connections under the limits of ``limits`` (timeouts,
a connection cap, quiet accept errors). SIGTERM and SIGINT are handled from the start:
a signal during the start-up import stops it and closes the host like any other stop,
so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress

from aiohttp import web
from ecmahost.engine.cli import limits
from ecmahost.engine.cli.errors import RuntimeProblem, address_in_use
from ecmahost.engine.cli.lock import StateLock
from ecmahost.engine.config import HostConfig, Listen
from ecmahost.engine.host import Host
from ecmahost.engine.scim.app import create_app

__all__ = ["bind", "serve"]

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 60.0
"""How long a stop waits for requests in flight before cancelling them."""


def serve(
    config: HostConfig,
    listen: Listen,
    tls: Callable[[], ssl.SSLContext | None],
) -> None:
    """Serve until SIGTERM or SIGINT. ``tls`` makes the server's TLS context; it is
    called once the state folder is ours, since it may write a certificate there."""
    lock = StateLock(config.state_dir)
    lock.acquire()
    try:
        with bound(listen) as sockets:
            asyncio.run(_serve(config, listen, sockets, tls()))
    finally:
        lock.release()


@contextmanager
def bound(listen: Listen) -> Iterator[list[socket.socket]]:
    """The sockets of ``listen``, bound; closed on the way out."""
    sockets = bind(listen)
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def bind(listen: Listen) -> list[socket.socket]:
    """Bind a socket per address ``listen.host`` resolves to (as asyncio would), or
    raise a one-line error. They listen only once the host serves: until then a
    client is refused rather than left waiting through the start-up import."""
    try:
        infos = socket.getaddrinfo(
            listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise RuntimeProblem(f"cannot listen on {listen}: {exc}") from exc
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in infos:
            if any(s.family == family and s.getsockname()[:2] == address[:2] for s in sockets):
                continue  # getaddrinfo may name one address twice
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            # As asyncio does: a restart must not wait for the old connections' TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise address_in_use(str(listen)) from exc
        raise RuntimeProblem(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
    return sockets


async def _serve(
    config: HostConfig,
    listen: Listen,
    sockets: list[socket.socket],
    ssl_context: ssl.SSLContext | None,
) -> None:
    stop = _stop_on_signals()
    limits.raise_open_files_limit(config.host.max_connections)
    host = Host(config)
    runner: web.AppRunner | None = None
    listeners: limits.Listeners | None = None
    try:
        if not await _unless_stopped(host.open(serve=True), stop):
            log.info("start-up cancelled", extra={"action": "host.stop"})
            return
        runner = web.AppRunner(
            create_app(host, open_host=False),
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        listeners = limits.listen(runner, sockets, ssl_context, config.host)
        _announce(config, listen, sockets, ssl_context)
        await stop.wait()
    finally:
        # Only a requested stop is worth the log lines: after a start-up error they
        # would bury the one line that says what is wrong.
        if listeners is not None:
            listeners.stop()
        await _stop(host, runner, tell=stop.is_set())


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.info("%s: already stopping", sig.name, extra={"action": "host.stop"})
            return
        log.info("%s: stopping", sig.name, extra={"action": "host.stop"})
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    return stop


async def _unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run ``work`` to its end (True) or until ``stop`` is set (cancelled, False)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        task.result()  # start-up's own error, if any
        return True
    log.info("cancelling start-up (imports in progress stop here)", extra={"action": "host.stop"})
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    return False


async def _stop(host: Host, runner: web.AppRunner | None, *, tell: bool) -> None:
    """Close in the order that keeps every acknowledged write: stop taking requests
    and let those in flight answer, then let the export workers record what they
    exported, then close the space (its pending commits finish first)."""
    extra = {"action": "host.stop"}
    if not tell:
        if runner is not None:
            await runner.cleanup()
        await host.close()
        return
    if runner is not None:
        server = runner.server
        open_connections = len(server.connections) if server is not None else 0
        log.info(
            "stopping: no new connections; waiting up to %.0f s for %d open connection(s)",
            SHUTDOWN_TIMEOUT_S,
            open_connections,
            extra=extra,
        )
        await runner.cleanup()
    if host.runtimes:
        log.info(
            "stopping: waiting for the export workers of %s to record exports in flight",
            ", ".join(host.runtimes),
            extra=extra,
        )
    log.info("stopping: closing the connector space after its pending commits", extra=extra)
    await host.close()
    log.info("stopped", extra=extra)


def _announce(
    config: HostConfig,
    listen: Listen,
    sockets: list[socket.socket],
    ssl_context: ssl.SSLContext | None,
) -> None:
    port = int(sockets[0].getsockname()[1]) if sockets else listen.port
    scheme = "https" if ssl_context else "http"
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    for name in config.connectors:
        url = f"{scheme}://{host}:{port}/ecma2host_{name}/scim"
        print(f"ecmahost: serving connector {name} at {url}", flush=True)
