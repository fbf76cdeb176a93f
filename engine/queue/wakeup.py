"""Waking a serving host's export workers from another process.

The command line replays and discards events in its own process; the host serving
the same state folder would otherwise notice only at its idle poll. The serving host
listens on a Unix datagram socket in the state folder (``wake.sock``); ``poke`` sends
it one empty datagram. A datagram carries no data and needs no reply: the workers
simply look at the queue again. Nobody listening is no error.

Unix socket paths are limited to about 100 bytes; for a deeper state folder the
socket lives in Linux's abstract namespace under a name derived from the folder's
path, so both sides still find each other. Where Unix sockets are missing (Windows)
both sides do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["SOCKET_NAME", "address", "listen", "poke"]

log = logging.getLogger(__name__)

SOCKET_NAME = "wake.sock"
_MAX_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


def address(state_dir: Path) -> str | None:
    """The socket address of the host serving ``state_dir``; None where there is
    none to be had."""
    if not hasattr(socket, "AF_UNIX"):
        return None
    path = str(state_dir.resolve() / SOCKET_NAME)
    if len(os.fsencode(path)) <= _MAX_PATH:
        return path
    if not sys.platform.startswith("linux"):
        return None
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:32]
    return f"\0ecmahost-wake-{digest}"


def poke(state_dir: Path) -> bool:
    """Tell the host serving ``state_dir`` to look at its queue now; whether one
    was listening. Never blocks and never raises."""
    where = address(state_dir)
    if where is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"", where)
    except OSError:  # nobody listens (no file, or a stale one), or its buffer is full
        return False
    return True


async def listen(state_dir: Path, wake: Callable[[], None]) -> None:
    """Call ``wake`` on the event loop for every poke, until cancelled. If the socket
    cannot be bound the host serves on without it (replays then wait for the idle
    poll), logged once."""
    where = address(state_dir)
    if where is None:
        await asyncio.Event().wait()
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        _bind(sock, where)
    except OSError as exc:
        sock.close()
        log.warning("cannot listen for wake-ups on %s: %s", where, exc)
        await asyncio.Event().wait()
        return
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    loop.add_reader(sock.fileno(), _drain, sock, wake)
    try:
        await asyncio.Event().wait()
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
        if not where.startswith("\0"):
            with contextlib.suppress(OSError):
                os.unlink(where)


def _bind(sock: socket.socket, where: str) -> None:
    """Bind, taking the place of a socket file a stopped host left behind."""
    if not where.startswith("\0"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(where)
    sock.bind(where)


def _drain(sock: socket.socket, wake: Callable[[], None]) -> None:
    """Read every datagram waiting (many pokes are one wake-up), then wake."""
    while True:
        try:
            sock.recv(64)
        except OSError:  # BlockingIOError: none left
            break
    log.info("the queue changed in another process", extra={"action": "export.wake"})
    wake()
