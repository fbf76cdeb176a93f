"""One throwaway server per test session, however many modules import its fixture.

A fixture imported into two modules is two fixtures to pytest, so the server is
shared through a reference count: the first user starts it, the last one stops it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["SharedServer"]

T = TypeVar("T")


class SharedServer(Generic[T]):
    def __init__(self, start: Callable[[], T], destroy: Callable[[T], None]) -> None:
        self._start, self._destroy = start, destroy
        self._lock = threading.Lock()
        self._server: T | None = None
        self._users = 0

    @contextlib.contextmanager
    def use(self) -> Iterator[T]:
        with self._lock:
            if self._server is None:
                self._server = self._start()
            self._users += 1
            server = self._server
        try:
            yield server
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._server = None
                    self._destroy(server)
