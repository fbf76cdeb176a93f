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
# MariaDB and MySQL say what went wrong by error number, not SQLSTATE (most of theirs
# are HY000), and their drivers raise OperationalError for errors they do not know,
# constraint failures included: only these numbers are worth a retry.
_MYSQL_TRANSIENT = frozenset(
    {
        1021,  # disk full
        1037,  # out of memory
        1038,  # out of sort memory
        1040,  # too many connections
        1041,  # out of memory for a thread
        1044,  # access denied to the database: nothing about the change is wrong
        1045,  # access denied (wrong password)
        1049,  # the database does not exist (yet)
        1053,  # server shutdown in progress
        1114,  # the table is full
        1129,  # host blocked after too many connection errors
        1205,  # lock wait timeout
        1213,  # deadlock
        1927,  # MariaDB: connection killed
        1969,  # MariaDB: max_statement_time exceeded
        2002,  # cannot connect through the socket
        2003,  # cannot connect over TCP
        2006,  # server has gone away
        2013,  # connection lost during a query
        3024,  # MySQL: max_execution_time exceeded
        4031,  # MySQL: disconnected for inactivity
    }
)
_MYSQL_UNIQUE = frozenset({1062, 1586})  # duplicate entry (for key …)
_MYSQL_DRIVERS = frozenset({"pymysql", "aiomysql", "asyncmy"})


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
    code = _mysql_code(exc.orig)
    if code is not None:
        return code in _MYSQL_TRANSIENT
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
    mysql_error = _mysql_error(orig)
    if mysql_error is not None:  # str() would show the tuple
        return f"{mysql_error[1]} (error {mysql_error[0]})"
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


def _mysql_code(orig: BaseException | None) -> int | None:
    error = _mysql_error(orig)
    return error[0] if error is not None else None


def _mysql_error(orig: BaseException | None) -> tuple[int, str] | None:
    """(number, message) of a MariaDB/MySQL driver's error (PyMySQL's shape), else None."""
    for candidate in (orig, getattr(orig, "__cause__", None)):
        if candidate is None or type(candidate).__module__.split(".")[0] not in _MYSQL_DRIVERS:
            continue
        args = candidate.args
        if len(args) == 2 and type(args[0]) is int and isinstance(args[1], str):
            return args[0], args[1]
    return None


def _is_unique_violation(exc: BaseException) -> bool:
    if not isinstance(exc, sa_exc.IntegrityError):
        return False
    code = _mysql_code(exc.orig)
    if code is not None:
        return code in _MYSQL_UNIQUE
    state = _sqlstate(exc.orig)
    if state is not None:
        return state == _UNIQUE_SQLSTATE
    sqlite_name = getattr(exc.orig, "sqlite_errorname", None)
    if isinstance(sqlite_name, str):
        return sqlite_name in _SQLITE_UNIQUE
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate" in text
