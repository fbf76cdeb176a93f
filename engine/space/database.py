"""Opening the connector space's database: URL, SQLite pragmas, Alembic migrations."""

from __future__ import annotations

import getpass
import logging
import os
import sqlite3
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from ecmahost import migrations
from ecmahost.connectors.exceptions import EcmahostError
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

__all__ = [
    "CONFLICT_TRIES",
    "DATABASE_FILE_NAME",
    "DatabaseUnusableError",
    "GroupDialect",
    "conflicted",
    "current_user",
    "database_file",
    "migrate",
    "open_engine",
    "open_group_engine",
    "pending_migrations",
    "require_current",
    "sessionmaker_for",
    "sqlite_url",
    "unreachable",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(migrations.__file__).parent

WRITER_CACHE_KIB = 65536
"""The writer's page cache (SQLite's default is 2 MiB): a large import inserts into
index pages all over the file, and keeping them cached saves rereading them."""


DATABASE_FILE_NAME = "ecmahost.db"


def database_file(state_dir: Path) -> Path:
    return state_dir / DATABASE_FILE_NAME


def sqlite_url(state_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{database_file(state_dir)}"


def open_engine(
    url: str, synchronous: str = "FULL", *, writer: bool = False, reader: bool = False
) -> AsyncEngine:
    """An async engine; on SQLite every connection runs in WAL mode with the given
    ``synchronous`` level (FULL: a committed write survives power loss).

    A ``writer`` engine on SQLite has one connection whose transactions begin with
    BEGIN IMMEDIATE: it takes the database's write lock up front, so a transaction
    that read first never fails to upgrade when another process wrote meanwhile.
    A ``reader`` engine only reads: its statements run without an explicit
    transaction and a connection goes back to the pool without a rollback, which
    saves two trips to the driver's thread per request.

    A database error names its statement but never its values (users' attributes,
    sealed passwords): the error's text reaches logs, the connector's state and
    the alert webhook."""
    sqlite = url.startswith("sqlite")
    options: dict[str, Any] = {}
    if sqlite and writer:
        options = {"pool_size": 1, "max_overflow": 0}
    elif sqlite and reader:
        options = {"pool_size": 8, "max_overflow": 8, "pool_reset_on_return": None}
    elif not sqlite:  # a connection the server dropped (a restart) is replaced, not used
        options = {"pool_pre_ping": True}
    engine = create_async_engine(url, hide_parameters=True, **options)
    if sqlite:
        begin = "BEGIN IMMEDIATE" if writer else None if reader else "BEGIN"
        _sqlite_pragmas(engine, synchronous, begin, WRITER_CACHE_KIB if writer else None)
    return engine


def open_group_engine(url: str, synchronous: str = "FULL") -> Engine:
    """A synchronous writer engine on the same SQLite file, for the group writer: a
    group of SCIM writes runs in one hop to a worker thread instead of one hop per
    statement (each of which costs ~0.3 ms through the async driver)."""
    sync_url = make_url(url).set(drivername=f"sqlite+{_GROUP_DRIVER}")
    engine = create_engine(sync_url, pool_size=1, max_overflow=0, hide_parameters=True)
    _sqlite_pragmas(engine, synchronous, None, WRITER_CACHE_KIB)
    return engine


class GroupDialect(SQLiteDialect_pysqlite):
    """The group writer's dialect: its transaction and savepoint statements go
    straight to the driver. A group runs a savepoint per job; SQLAlchemy compiles
    each savepoint's statement afresh (its name changes) and runs it through a full
    execution, which cost more CPU than the job's own inserts. SQLAlchemy still
    keeps the transactions' state: only how their statements are sent changes."""

    supports_statement_cache = True  # its compiled statements are the base dialect's

    def do_begin(self, dbapi_connection: Any) -> None:
        # BEGIN IMMEDIATE: the write lock up front (see ``open_engine``).
        _run(dbapi_connection, "BEGIN IMMEDIATE")

    def do_savepoint(self, connection: Connection, name: str) -> None:
        _run(connection.connection, f"SAVEPOINT {name}")

    def do_rollback_to_savepoint(self, connection: Connection, name: str) -> None:
        _run(connection.connection, f"ROLLBACK TO SAVEPOINT {name}")

    def do_release_savepoint(self, connection: Connection, name: str) -> None:
        _run(connection.connection, f"RELEASE SAVEPOINT {name}")


_GROUP_DRIVER = "ecmahost_group"
registry.register(f"sqlite.{_GROUP_DRIVER}", __name__, GroupDialect.__name__)


def _run(dbapi_connection: Any, statement: str) -> None:
    """``statement`` on the driver, its error raised as SQLAlchemy raises the
    driver's errors (what the engine's callers catch)."""
    try:
        dbapi_connection.execute(statement)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc


def _sqlite_pragmas(
    engine: AsyncEngine | Engine, synchronous: str, begin: str | None, cache_kib: int | None
) -> None:
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling breaks SAVEPOINTs (which group
        # commit needs); SQLAlchemy's documented remedy is to emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Another process (the CLI) may hold the write lock for a moment.
        cursor.execute("PRAGMA busy_timeout=10000")
        if cache_kib is not None:
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
        cursor.close()

    if begin is None:
        return

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


def sessionmaker_for(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


class DatabaseUnusableError(EcmahostError):
    """The database cannot be opened as it is: written by a newer ecmahost, corrupt,
    or not writable. The message names the file and what to do."""


def current_user() -> str:
    """Who this process runs as, for messages about permissions."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary uid in a container
        name = "?"
    return f"{name} (uid {os.getuid()})"


async def migrate(engine: AsyncEngine) -> None:
    """Create or upgrade the schema to the newest migration.

    Raises ``DatabaseUnusableError`` for a database this version cannot use."""
    path = engine.url.database or str(engine.url)
    try:
        async with engine.begin() as conn:
            before, applied = await conn.run_sync(_pending, path)
            await conn.run_sync(_upgrade, path)
    except DBAPIError as exc:
        problem = _unusable(path, exc.orig)
        if problem is None:
            raise
        raise problem from exc
    _log_migration(path, before, applied)


async def pending_migrations(engine: AsyncEngine) -> tuple[str | None, list[str]]:
    """The database's schema revision and the revisions ``migrate`` would apply, in
    order; nothing is changed. Raises ``DatabaseUnusableError`` as ``migrate`` does."""
    path = engine.url.database or str(engine.url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_pending, path)
    except DBAPIError as exc:
        problem = _unusable(path, exc.orig)
        if problem is None:
            raise
        raise problem from exc


async def require_current(engine: AsyncEngine) -> None:
    """Refuse a schema other than this version's newest: an older one needs
    ``ecmahost migrate`` (run once, not by each of several hosts at their start), a
    newer one a newer ecmahost."""
    current, pending = await pending_migrations(engine)
    if pending:
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnusableError(
            f"database {where} is at schema {current or '(empty)'}, this ecmahost"
            f" needs {pending[-1]}: run `ecmahost migrate` once (with the hosts"
            " stopped), then start the hosts"
        )


def _pending(connection: Connection, path: str) -> tuple[str | None, list[str]]:
    script = ScriptDirectory.from_config(_alembic_config(connection))
    _refuse_unknown_revision(connection, script, path)
    current = MigrationContext.configure(connection).get_current_revision()
    steps = script.iterate_revisions(script.get_current_head(), current)
    return current, [step.revision for step in reversed(list(steps))]


def _log_migration(path: str, before: str | None, applied: list[str]) -> None:
    # An upgrade is the one moment the schema changes: the log says so, and from what.
    # A new database is no news (and must not bury a start-up error's one line).
    extra = {"action": "db.migrate", "database": path, "from": before, "applied": applied}
    if applied and before is not None:
        log.info(
            "database %s migrated from schema %s to %s (%s)",
            path,
            before or "(empty)",
            applied[-1],
            ", ".join(applied),
            extra=extra,
        )
    else:
        log.debug("database %s: schema %s, applied %s", path, before, applied, extra=extra)


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, path: str) -> None:
    config = _alembic_config(connection)
    _refuse_unknown_revision(connection, ScriptDirectory.from_config(config), path)
    command.upgrade(config, "head")


def _refuse_unknown_revision(connection: Connection, script: ScriptDirectory, path: str) -> None:
    """A revision we have no migration for was written by a newer ecmahost: upgrading
    from it is impossible and running on its schema would corrupt data."""
    ours = {rev.revision for rev in script.walk_revisions()}
    for revision in MigrationContext.configure(connection).get_current_heads():
        if revision not in ours:
            raise DatabaseUnusableError(
                f"database {path} was written by a newer ecmahost (schema revision"
                f" {revision}); this is ecmahost {version('ecmahost')}, whose newest"
                f" schema revision is {script.get_current_head()}: upgrade ecmahost"
            )


def unreachable(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says the database cannot be
    reached now (down, shutting down, restarting) rather than that a statement was
    wrong: the work may be tried again later."""
    lost = (
        ConnectionError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.OperatorInterventionError,  # the server shuts down, or starts
    )
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, DBAPIError) and (
            cause.connection_invalidated or isinstance(cause, (OperationalError, InterfaceError))
        ):
            return True
        if isinstance(cause, lost):
            return True
        cause = cause.__cause__
    return False


_CONFLICTS = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
CONFLICT_TRIES = 5
"""How often a transaction is run in all while PostgreSQL keeps giving it up
(``conflicted``): other hosts' writes lock the same objects in their own order."""


def conflicted(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, is PostgreSQL giving up a
    transaction for another's sake (a deadlock's victim, a serialization failure):
    the transaction was rolled back whole, and running it again may well succeed."""
    cause: BaseException | None = error
    while cause is not None:
        if getattr(cause, "sqlstate", None) in _CONFLICTS:
            return True
        cause = cause.__cause__
    return False


def _unusable(path: str, error: BaseException | None) -> DatabaseUnusableError | None:
    """The one-line error for what SQLite said about the file, if it is one we know."""
    if not isinstance(error, sqlite3.Error):
        return None
    code = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF  # the primary result code
    if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return DatabaseUnusableError(
            f"database {path} is corrupt ({error}): restore the file from a backup,"
            " or move it away to start empty (a full import then reloads the targets)"
        )
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        return DatabaseUnusableError(
            f"database {path} cannot be written by user {current_user()} ({error}):"
            " the file and its folder must be writable by that user"
        )
    return None
