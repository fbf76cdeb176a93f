"""The CSV file's lock between processes: hosts that share one file (on storage every
one of them reaches) take turns, a batch or an import's first look at a time.

The lock is an ``flock`` on ``FILE.lock`` beside the file, which the operating system
releases when the holder dies, ``kill -9`` included. The file itself cannot carry it,
as a rewrite replaces the file by a rename; and the lock file is kept, never deleted:
a process waiting on a deleted lock file would get it while a newcomer locks the
next one. (The ``filelock`` library deletes its file on release, and falls back to a
lock that a killed process leaves held; the state folder's lock is made the same way
as this one.)
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ecmahost.connectors.exceptions import TransientError

__all__ = ["held", "lock_path"]

_POLL_S = 0.02
"""How often a waiter tries again: a small batch holds the lock a few milliseconds."""


def lock_path(path: Path) -> Path:
    """Beside the file itself, links followed: hosts that reach it by other paths
    take the same lock."""
    real = path.resolve()
    return real.with_name(f"{real.name}.lock")


@contextmanager
def held(path: Path, timeout_s: float) -> Iterator[None]:
    """Hold the lock of ``path`` meanwhile; ``TransientError`` when another process
    holds it longer than ``timeout_s`` (the batch is retried later)."""
    lock = lock_path(path)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while not _took(fd):
            if time.monotonic() >= deadline:
                raise TransientError(f"{lock}: held by another process over {timeout_s:g} s")
            time.sleep(_POLL_S)
        yield
    finally:
        os.close(fd)  # which releases the lock


def _took(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
