"""One serving host per state folder: an exclusive lock on ``ecmahost.lock``.

A second host on the same folder would recover the first one's in-flight exports
(put them back to pending) and export them twice. The lock is an ``flock`` on a file
in the state folder, so the operating system releases it when the process dies,
however it dies (``kill -9`` included); the file keeps the holder's pid for the
message. Only ``serve`` takes it: ``import``, ``cache`` and ``exports`` work on the
database directly and may run beside a serving host.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ecmahost.connectors.exceptions import EcmahostError
from ecmahost.engine.cli.errors import state_dir_error

__all__ = ["LOCK_FILE_NAME", "StateFolderBusyError", "StateLock"]

LOCK_FILE_NAME = "ecmahost.lock"


class StateFolderBusyError(EcmahostError):
    """Another process serves this state folder."""


class StateLock:
    """Held from ``acquire`` until ``release`` or the end of the process."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_FILE_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Create the state folder if needed (0700, also forced on an existing one)
        and take the lock, or raise at once:
        ``StateFolderBusyError`` naming the other process's pid, or a one-line
        error for a folder that cannot be created or written."""
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Forced on an existing folder too: it holds the database (personal data)
            # and the TLS key, and older versions made it 0755.
            self.state_dir.chmod(0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise state_dir_error(self.state_dir, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise StateFolderBusyError(
                f"state folder {self.state_dir.resolve()} is in use by another ecmahost"
                f" ({who}); stop it first or give this one its own state_dir"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise state_dir_error(self.state_dir, exc) from exc
        # The pid is written only once the lock is ours, so a loser never clobbers it.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # Empty the file first: a stale pid must not be shown once nobody holds it.
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
