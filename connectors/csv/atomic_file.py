"""A file changed so that no crash leaves half of a write behind.

A file is either replaced whole (a new file next to it, fsync'ed, renamed over it, the
rename made durable) or appended to with one fsync'ed write that is truncated back if it
fails. A reader that measured the file between two appends reads only that much of it.
"""

from __future__ import annotations

import io
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

__all__ = ["Prefix", "append", "replacing"]

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation under us
_PRIVATE = 0o600


@contextmanager
def replacing(path: Path, encoding: str, errors: str) -> Iterator[io.TextIOWrapper]:
    """A new file that atomically takes ``path``'s place when the block succeeds.

    It is written next to ``path`` (a rename is only atomic within a file system),
    fsync'ed before the rename, and removed if anything fails: ``path`` is always
    either the old file or the whole new one, and no temporary file is left behind.
    The new file is 0600, or the old file's owner bits (group and other get nothing).
    """
    # Replace what a symlink points at, not the link: the file stays where it was put.
    path = Path(os.path.realpath(path))
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # Owner only, whatever the umask: the file holds personal data. A file being
    # replaced keeps its owner bits but loses any group or other access.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, _PRIVATE)
    try:
        with open(fd, "w", encoding=encoding, errors=errors, newline="") as out:
            with suppress(FileNotFoundError):
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode) & stat.S_IRWXU)
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)


def append(path: Path, data: bytes) -> None:
    """Add ``data`` at the end of ``path`` with one fsync'ed write.

    If the write or the fsync fails, the file is cut back to its old size before the
    error is raised, so it holds either all of ``data`` or none of it.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | _O_BINARY)
    try:
        start = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError:
            # Leave nothing partial behind: the file is as it was, the write can be retried.
            with suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


class Prefix(io.RawIOBase):
    """The first ``size`` bytes of a file: what a reader reads while appends go on,
    so it never sees the half of an append that is being written."""

    def __init__(self, raw: IO[bytes], size: int) -> None:
        self._raw = raw
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows cannot open a folder to fsync it
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
