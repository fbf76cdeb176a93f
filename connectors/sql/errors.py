"""Database errors, translated once at the SQL connector's boundary into the engine's.

What the caller must do decides the class: retry later (``TransientError``: the
database is unreachable, restarting, out of resources, or a lock or deadlock got in
the way), or give up on this change (``PermanentError``, ``ConflictError`` for a
unique value already taken). The database's own message is kept, SQL and bound
values are not (they may hold personal data, and the engine already knows the change).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ecmahost.connectors.exceptions import (
    ConflictError,
    EcmahostError,
    PermanentError,
    TransientError,
)
from sqlalchemy import exc as sa_exc

__all__ = ["boundary", "describe", "is_transient", "translate"]

_TRANSIENT_SQLSTATE_CLASSES = frozenset(
    {
        "08",  # connection exception
        "28",  # invalid authorization: nothing about the change is wrong
        "3D",  # the database does not exist (yet)
        "40",  # serialization failure, deadlock
        "53",  # insufficient resources: disk full, too many connections
        "57",  # operator intervention: shutdown, statement timeout, cannot connect now
        "58",  # system error: I/O
    }
)
_TRANSIENT_SQLSTATES = frozenset({"55P03", "55006"})  # lock not available, object in use
_UNIQUE_SQLSTATE = "23505"
_SQLITE_TRANSIENT = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_CANTOPEN",
    "SQLITE_NOMEM",
    "SQLITE_PROTOCOL",
    "SQLITE_INTERRUPT",
)
_SQLITE_UNIQUE = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def translate(exc: BaseException, doing: str) -> EcmahostError:
    """The engine's error for ``exc``, raised while ``doing`` (e.g. "cannot write 'x'")."""
    message = f"{doing}: {describe(exc)}"
    if is_transient(exc):
        return TransientError(message)
    if _is_unique_violation(exc):
        return ConflictError(message)
    return PermanentError(message)


@contextlib.contextmanager
def boundary(doing: str) -> Iterator[None]:
    """Translate the database's errors raised inside, chained; the engine's pass through."""
    try:
        yield
    except EcmahostError:
        raise
    except (sa_exc.SQLAlchemyError, OSError, TimeoutError) as exc:
        raise translate(exc, doing) from exc


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later may succeed without anything being changed."""
    if isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = _sqlstate(exc.orig)
    if state is not None:
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES
    sqlite_name = getattr(exc.orig, "sqlite_errorname", None)
    if isinstance(sqlite_name, str):
        return sqlite_name.startswith(_SQLITE_TRANSIENT)
    # A driver that says nothing more: DB-API's own classes are the best guess left.
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)


def describe(exc: BaseException) -> str:
    """The database's message (and PostgreSQL's detail line), without SQL or values."""
    if isinstance(exc, sa_exc.StatementError) and exc.orig is not None:
        return _driver_message(exc.orig)
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    return str(exc) or type(exc).__name__


def _driver_message(orig: BaseException) -> str:
    text = str(orig)
    if text.startswith("<class '"):  # some adapters prefix the driver's class
        text = text.partition(": ")[2]
    cause = orig.__cause__ if orig.__cause__ is not None else orig
    detail = getattr(cause, "detail", None)
    text = text or type(cause).__name__
    return f"{text} ({detail})" if isinstance(detail, str) and detail else text


def _sqlstate(orig: BaseException | None) -> str | None:
    for candidate in (orig, getattr(orig, "__cause__", None)):
        for name in ("sqlstate", "pgcode"):  # asyncpg and psycopg 3; psycopg2
            state = getattr(candidate, name, None)
            if isinstance(state, str) and len(state) == 5:
                return state
    return None


def _is_unique_violation(exc: BaseException) -> bool:
    if not isinstance(exc, sa_exc.IntegrityError):
        return False
    state = _sqlstate(exc.orig)
    if state is not None:
        return state == _UNIQUE_SQLSTATE
    sqlite_name = getattr(exc.orig, "sqlite_errorname", None)
    if isinstance(sqlite_name, str):
        return sqlite_name in _SQLITE_UNIQUE
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate" in text
