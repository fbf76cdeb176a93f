"""A database table as a target, through SQLAlchemy's asyncio engine: any database
with an async driver (``sqlite+aiosqlite``, ``postgresql+asyncpg``, ...).

The table is reflected when the connector opens: its columns become the schema's
attributes (see ``sql_values`` for the types), its anchor column must be unique. A
full import pages through the table by anchor (keyset paging), one short read per
page. An export batch is one transaction of as few statements as it can be (see
``batch``); when the database refuses one of its changes, the batch is sent again
with each change in its own savepoint, so a refused value fails that change alone
while the others commit. When the database itself is unreachable or busy, the whole
batch is retried later.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ecmahost.connectors.base import (
    Capability,
    Change,
    ChangeKind,
    Connector,
    ConnectorSettings,
    Delta,
    Record,
    Result,
    Schema,
)
from ecmahost.connectors.direction import DirectionSettings
from ecmahost.connectors.exceptions import ConfigError, PermanentError, TransientError
from ecmahost.connectors.secrets import redact, resolve_secret
from ecmahost.connectors.sql import batch, mariadb
from ecmahost.connectors.sql.batch import Plan
from ecmahost.connectors.sql.delta import DeltaColumns, DeltaSettings, Row, changes_after
from ecmahost.connectors.sql.errors import boundary, is_transient, translate
from ecmahost.connectors.sql.mapping import TableMapping
from ecmahost.connectors.sql.upsert import (
    delete_object,
    insert_generated,
    rename_object,
    update_generated,
    upsert_object,
)
from ecmahost.connectors.sql.value_tables import (
    ValueTable,
    ValueTableSettings,
    wanted_sets,
    with_sets,
)
from pydantic import Field, SecretStr, field_validator
from sqlalchemy import MetaData, Table, event, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = ["SqlConnector", "SqlSettings"]

log = logging.getLogger(__name__)


class SqlSettings(ConnectorSettings, DirectionSettings):
    """``url`` is a SQLAlchemy async URL (a secret: ``env:NAME`` or ``file:PATH`` refer
    to it); ``table`` lives in ``table_schema`` (default: the connection's own);
    ``anchor`` names the anchor column, which the database fills (a DEFAULT, an
    identity) when ``anchor_generated``; ``attributes`` maps attribute names to columns
    (default: every column, by its own name); ``disable_column`` is served as a Boolean
    even when it is an integer 0/1 column; ``timeout_s`` bounds connecting and waiting
    for a lock. ``multi_valued`` maps a multi-valued attribute's name to the table
    holding its values, one row per value (see ``value_tables``).
    ``import_only``/``export_only`` name attributes that flow one way (generated
    columns are import-only anyway); ``defaulted_columns`` names columns the database
    fills that reflection does not show (a trigger): like columns with a default, an
    object without them leaves them alone rather than set NULL. ``delta`` enables
    delta imports by a watermark column (see ``sql.delta``)."""

    url: SecretStr
    table: str = Field(min_length=1)
    table_schema: str | None = None
    anchor: str = Field(min_length=1)
    anchor_generated: bool = False
    attributes: dict[str, str] | None = None
    object_type: str = Field("Person", min_length=1)
    disable_column: str | None = None
    page_size: int = Field(1000, ge=1, le=100_000)
    timeout_s: float = Field(30.0, gt=0)
    multi_valued: dict[str, ValueTableSettings] = Field(default_factory=dict)
    defaulted_columns: tuple[str, ...] = ()
    delta: DeltaSettings | None = None

    @field_validator("attributes")
    @classmethod
    def _named(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and not (value and all(value) and all(value.values())):
            raise ValueError("needs at least one attribute, and no empty names")
        return value


class SqlConnector(Connector):
    """One table holding one object type, one row per object."""

    type_name: ClassVar[str] = "sql"
    settings_model: ClassVar[type[ConnectorSettings]] = SqlSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.IMPORT, Capability.EXPORT, Capability.RENAME, Capability.ASSIGNS_ANCHOR}
    )

    def __init__(self, name: str, settings: SqlSettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self.settings: SqlSettings = settings
        self._engine: AsyncEngine | None = None
        self._mapping: TableMapping | None = None
        self._delta: DeltaColumns | None = None
        if settings.delta is not None:  # this table's deltas, not every SQL connector's
            self.capabilities = self.capabilities | {Capability.DELTA_IMPORT}  # type: ignore[misc]

    @property
    def _key(self) -> str:
        return f"connectors.{self.name}.settings"

    async def open(self) -> None:
        """Connect and reflect the table; ``ConfigError`` when it cannot serve."""
        self._engine = _create_engine(self._url(), self.settings.timeout_s, f"{self._key}.url")
        try:
            self._mapping = await self._reflect(self._engine)
            if self.settings.delta is not None:
                key = f"{self._key}.delta"
                self._delta = DeltaColumns.build(self._mapping, self.settings.delta, key)
        except BaseException:
            await self.close()
            raise
        log.info(
            "%s: table %s, attributes %s",
            self.name,
            self._mapping.table.fullname,
            ", ".join(f.attribute.name for f in self._mapping.fields),
            extra={"action": "sql.open", "connector": self.name},
        )

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def validate(self) -> None:
        """Read one row: the database answers and the table is still readable."""
        engine, mapping = self._opened()
        with boundary(f"{self.name}: cannot read table {mapping.table.fullname}"):
            async with engine.connect() as conn:
                await conn.execute(mapping.page(None, 1))

    async def schema(self) -> Schema:
        return self._opened()[1].schema

    async def full_import(self) -> AsyncIterator[Record]:
        engine, mapping = self._opened()
        after: Any = None
        while True:
            rows, records = await self._page(engine, mapping, after)
            for record in records:
                yield record
            if len(rows) < self.settings.page_size:
                return
            after = rows[-1][0]

    async def watermark(self) -> str:
        """The watermark column's highest value; empty for a table without one."""
        columns = self._delta_columns()
        return columns.text((await self._read(columns.highest()))[0][0])

    async def delta_import(self, watermark: str) -> AsyncIterator[Delta]:
        """The rows whose watermark column is above ``watermark``, in its order; a
        soft-deleted row is a deletion (see ``sql.delta``)."""
        columns = self._delta_columns()
        size = self.settings.page_size
        async for change in changes_after(columns, watermark, self._read, self._changes, size):
            yield change

    async def import_size(self) -> int | None:
        engine, mapping = self._opened()
        with boundary(f"{self.name}: cannot count table {mapping.table.fullname}"):
            async with engine.connect() as conn:
                return int((await conn.execute(mapping.count())).scalar_one())

    async def export(self, changes: Sequence[Change]) -> Sequence[Result]:
        engine, mapping = self._opened()
        plans = [self._plan(change, mapping) for change in changes]
        if all(plan.error is not None for plan in plans):  # nothing to send
            return [Result(plan.change.anchor, plan.error) for plan in plans]
        try:
            with boundary(f"{self.name}: cannot write to table {mapping.table.fullname}"):
                if await _sent_in_bulk(engine, mapping, plans):
                    return [Result(plan.change.anchor, plan.error) for plan in plans]
                async with engine.begin() as conn:
                    return [await self._apply(conn, mapping, plan) for plan in plans]
        except TransientError as exc:
            # The batch's transaction is lost: every change is retried, except those
            # that could never be written, which fail now rather than after the outage.
            return [Result(plan.change.anchor, plan.error or exc) for plan in plans]

    # -- helpers ---------------------------------------------------------------

    async def _reflect(self, engine: AsyncEngine) -> TableMapping:
        s = self.settings
        with boundary(f"{self.name}: cannot read the definition of table {s.table}"):
            async with engine.connect() as conn:
                table = await conn.run_sync(_table, s.table, s.table_schema, f"{self._key}.table")
                sets = [await conn.run_sync(self._value_table, n) for n in s.multi_valued]
        mapping = TableMapping.build(
            table,
            anchor=s.anchor,
            attributes=s.attributes,
            object_type=s.object_type,
            disable_column=s.disable_column,
            key=self._key,
            sets=sets,
            directions=s,
            defaulted_columns=s.defaulted_columns,
            anchor_generated=s.anchor_generated,
        )
        if engine.dialect.name in mariadb.DIALECTS:
            with boundary(f"{self.name}: cannot read the collation of {s.table}"):
                async with engine.connect() as conn:
                    await mariadb.warn_of_inexact_anchor(conn, mapping)
        return mapping

    def _value_table(self, conn: Connection, name: str) -> ValueTable:
        where = self.settings.multi_valued[name]
        key = f"{self._key}.multi_valued.{name}"
        schema = where.table_schema or self.settings.table_schema
        return ValueTable.build(name, _table(conn, where.table, schema, f"{key}.table"), where, key)

    def _delta_columns(self) -> DeltaColumns:
        if self._delta is None:
            raise ConfigError("no [settings.delta] for delta imports", f"{self._key}.delta")
        return self._delta

    async def _read(self, statement: Any) -> list[Any]:
        engine, mapping = self._opened()
        with boundary(f"{self.name}: cannot read table {mapping.table.fullname}"):
            async with engine.connect() as conn:
                return list((await conn.execute(statement)).all())

    async def _changes(self, rows: list[Row]) -> list[Delta | None]:
        """The change each row is (watermarks filled in by the caller); None for a
        row without a usable anchor. Live rows get their sets, as a full import's."""
        mapping = self._opened()[1]
        found = [mapping.record(row.columns) for row in rows]
        live = [r for r, row in zip(found, rows, strict=True) if r is not None and not row.deleted]
        if live and mapping.sets:
            engine = self._opened()[0]
            with boundary(f"{self.name}: cannot read table {mapping.table.fullname}"):
                async with engine.connect() as conn:
                    for value_table in mapping.sets:
                        live = await with_sets(conn, mapping, value_table, live)
        by_anchor = {r.anchor: r for r in live}
        return [
            None if r is None else Delta(r.anchor, None if row.deleted else by_anchor[r.anchor], "")
            for r, row in zip(found, rows, strict=True)
        ]

    def _opened(self) -> tuple[AsyncEngine, TableMapping]:
        if self._engine is None or self._mapping is None:
            raise RuntimeError(f"connector {self.name} is not open")
        return self._engine, self._mapping

    def _url(self) -> URL:
        key = f"{self._key}.url"
        text = resolve_secret(self.settings.url.get_secret_value(), key, self.base_dir)
        try:
            url = make_url(text)
        except (sa_exc.ArgumentError, ValueError):
            # Not the parser's message: it repeats the URL, password and all.
            raise ConfigError("not a SQLAlchemy URL (dialect+driver://...)", key) from None
        if url.password:
            redact(str(url.password))
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            path = Path(url.database or "")
            if not path.is_absolute() and not str(path).startswith("file:"):
                url = url.set(database=str(self.base_dir / path))
        return url

    async def _page(
        self, engine: AsyncEngine, mapping: TableMapping, after: Any
    ) -> tuple[list[Any], list[Record]]:
        """The next page's rows and the records they hold, each with its sets: one
        query for the rows, then one per multi-valued attribute for the whole page."""
        with boundary(f"{self.name}: cannot read table {mapping.table.fullname}"):
            async with engine.connect() as conn:
                kept = self._delta.kept if self._delta is not None else None
                result = await conn.execute(mapping.page(after, self.settings.page_size, kept))
                rows = list(result.all())
                records = [r for r in map(mapping.record, rows) if r is not None]
                for value_table in mapping.sets if records else ():
                    records = await with_sets(conn, mapping, value_table, records)
                return rows, records

    def _plan(self, change: Change, mapping: TableMapping) -> Plan:
        try:
            if change.kind is ChangeKind.DELETE and not change.anchor:
                return Plan(change)  # never inserted: the database assigned it no anchor
            if change.kind is ChangeKind.DELETE:
                return Plan(change, anchor=mapping.anchor_value(change.anchor))
            if mapping.anchor_generated:
                held = mapping.anchor_value(change.anchor) if change.anchor else None
                return Plan(change, values=mapping.values(change), anchor=held)
            previous = change.previous_anchor
            renamed_from = mapping.anchor_value(previous) if previous is not None else None
            sets = wanted_sets(mapping.sets, change.attributes)
            return Plan(change, values=mapping.values(change), previous=renamed_from, sets=sets)
        except ValueError as exc:
            table = mapping.table.fullname
            error = PermanentError(f"{self.name}: cannot write {change.anchor!r} to {table}: {exc}")
            error.__cause__ = exc
            return Plan(change, error=error)

    async def _apply(self, conn: AsyncConnection, mapping: TableMapping, plan: Plan) -> Result:
        """One change in its own savepoint: a refused value fails only this change."""
        anchor = plan.change.anchor
        if plan.error is not None:
            return Result(anchor, plan.error)
        try:
            async with conn.begin_nested():
                if plan.values is not None and mapping.anchor_generated:
                    anchor = await _write_generated(conn, mapping, plan)
                elif plan.writes:
                    await _write(conn, mapping, plan)
        except sa_exc.SQLAlchemyError as exc:
            verb = "delete" if plan.values is None else "write"
            error = translate(exc, f"{self.name}: cannot {verb} {anchor!r}")
            if isinstance(error, TransientError):
                raise error from exc  # the whole batch: its transaction is lost
            return Result(anchor, error)
        except ValueError as exc:  # the database gave no usable anchor back
            return Result(anchor, PermanentError(f"{self.name}: cannot write: {exc}"))
        return Result(anchor)


async def _write_generated(conn: AsyncConnection, mapping: TableMapping, plan: Plan) -> str:
    """Update the row by its generated anchor, or insert one (a create, or a row gone
    meanwhile); returns the anchor the row has, as the import reads it."""
    assert plan.values is not None
    if plan.anchor is not None and await update_generated(conn, mapping, plan.anchor, plan.values):
        return plan.change.anchor
    raw = await insert_generated(conn, mapping, plan.values)
    anchor = mapping.anchor.codec.from_db(raw)
    if not isinstance(anchor, str) or not anchor:
        raise ValueError(f"the database gave column {mapping.anchor.column.name} no text value")
    return anchor


async def _sent_in_bulk(engine: AsyncEngine, mapping: TableMapping, plans: list[Plan]) -> bool:
    """Whether the batch was written in one go (see ``batch``). False when it cannot go
    so, or when the database refused any of it: then nothing of it was written."""
    sent = batch.statements(engine.dialect.name, mapping, plans)
    if sent is None:
        return False
    try:
        async with engine.begin() as conn:
            for statement in sent:
                await conn.execute(statement.executable, statement.rows)
    except sa_exc.SQLAlchemyError as exc:
        if is_transient(exc):
            raise  # the batch is retried later, as a whole
        return False
    return True


async def _write(conn: AsyncConnection, mapping: TableMapping, plan: Plan) -> None:
    """The plan's statements: values rows go after their object's row is written and
    before it is deleted or renamed (a rename writes them anew under the new anchor),
    so a foreign key from a values table to the row holds, with or without cascades."""
    if plan.values is None:
        for value_table in mapping.sets:
            await value_table.clear(conn, plan.anchor)
        await delete_object(conn, mapping, plan.anchor)
        return
    anchor = plan.values[mapping.anchor.column]
    if plan.previous is not None:
        for value_table in mapping.sets:
            await value_table.clear(conn, plan.previous)
        await rename_object(conn, mapping, plan.previous, anchor)
    await upsert_object(conn, mapping, plan.values)
    for value_table, wanted in zip(mapping.sets, plan.sets, strict=True):
        await value_table.write(conn, anchor, wanted)


def _table(conn: Connection, name: str, schema: str | None, key: str) -> Table:
    if not conn.dialect.has_table(conn, name, schema=schema):
        where = f"{schema}.{name}" if schema else name
        raise ConfigError(f"no table {where} in the database", key)
    listeners = [("column_reflect", mariadb.read_tinyint1_as_boolean)]
    return Table(name, MetaData(), schema=schema, autoload_with=conn, listeners=listeners)


def _create_engine(url: URL, timeout_s: float, key: str) -> AsyncEngine:
    try:
        engine = create_async_engine(
            url,
            connect_args=_connect_args(url, timeout_s),
            pool_pre_ping=True,  # a database restart leaves dead connections in the pool
            hide_parameters=True,  # values are personal data: never in errors or logs
        )
    except (sa_exc.ArgumentError, sa_exc.InvalidRequestError, ImportError) as exc:
        message = str(exc).replace(url.password, "***") if url.password else str(exc)
        raise ConfigError(f"cannot use this database URL: {message}", key) from None
    if url.get_backend_name() == "sqlite":
        _own_sqlite_transactions(engine)
    return engine


def _connect_args(url: URL, timeout_s: float) -> dict[str, Any]:
    driver = url.get_driver_name()
    if driver == "asyncpg":
        return {
            "timeout": timeout_s,
            # The server's lock timeout ends a wait first, with its own message; the
            # command timeout only catches a server that stopped answering.
            "command_timeout": 2 * timeout_s,
            "server_settings": {"lock_timeout": str(max(1, int(timeout_s * 1000)))},
        }
    if driver == "aiosqlite":
        return {"timeout": timeout_s}  # how long to wait for another writer's lock
    if url.get_backend_name() in mariadb.DIALECTS:
        return mariadb.connect_args(url, timeout_s)
    return {}


def _own_sqlite_transactions(engine: AsyncEngine) -> None:
    """The sqlite3 module's own transaction handling breaks SAVEPOINTs; SQLAlchemy's
    documented remedy is to switch it off and emit BEGIN ourselves."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")
