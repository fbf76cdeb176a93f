"""The SQL connector passes the conformance suite against a real MariaDB server, with
``INSERT … ON DUPLICATE KEY UPDATE`` (the anchor is the table's only unique key); and
what MariaDB does differently: collations, strict mode, utf8mb4, its error numbers."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import aiomysql
import pymysql
import pytest
from ecmahost.connectors.base import Change, ChangeKind, DataType, Record
from ecmahost.connectors.exceptions import ConflictError, PermanentError, TransientError
from ecmahost.connectors.sql.connector import SqlConnector, SqlSettings
from ecmahost.connectors.sql.errors import translate
from sqlalchemy import exc as sa_exc

from tests.connectors.conformance import ConnectorConformance, Objects
from tests.connectors.conformance_checks import export_ok
from tests.connectors.sql.mariadb import MariadbServer
from tests.connectors.sql.postgres import free_port
from tests.connectors.sql.sql_support import (  # noqa: F401 - fixtures
    SQL_ATTRIBUTES,
    Backend,
    Factory,
    add,
    imported,
    insert_statement,
    make_sql_fixture,
    mariadb_backend,
    mariadb_connection,
    row_of,
    statements,
    typed,
    users_ddl,
)


@pytest.fixture(scope="session")
def conformance_database(mariadb: MariadbServer) -> str:
    mariadb.create_database("conformance")
    return "conformance"


class TestMariadbConformance(ConnectorConformance):
    expected_attributes = SQL_ATTRIBUTES

    @pytest.fixture
    async def table(self, mariadb: MariadbServer, conformance_database: str) -> AsyncIterator[str]:
        """A new, empty users table for each test, dropped afterwards."""
        name = f"users_{secrets.token_hex(4)}"
        await _execute(mariadb, conformance_database, users_ddl(name))
        yield name
        await _execute(mariadb, conformance_database, f'DROP TABLE "{name}"')

    @pytest.fixture
    async def connector(
        self, mariadb: MariadbServer, conformance_database: str, table: str, tmp_path: Path
    ) -> AsyncIterator[SqlConnector]:
        settings = SqlSettings(
            url=mariadb.url(conformance_database),
            table=table,
            anchor="AzureObjectID",
            page_size=4,  # the imports below span several pages
        )
        connector = SqlConnector("SQL", settings, tmp_path)
        await connector.open()
        yield connector
        await connector.close()

    @pytest.fixture
    def target_reader(
        self, mariadb: MariadbServer, conformance_database: str, table: str
    ) -> Callable[[], Awaitable[Objects]]:
        async def read() -> Objects:
            db = await mariadb_connection(mariadb, conformance_database)
            try:
                async with db.cursor(aiomysql.DictCursor) as cursor:
                    await cursor.execute(f'SELECT * FROM "{table}"')
                    rows = [typed(row) for row in await cursor.fetchall()]
            finally:
                db.close()
            return {str(row["AzureObjectID"]): row for row in rows}

        return read

    @pytest.fixture
    def seed(
        self, mariadb: MariadbServer, conformance_database: str, table: str
    ) -> Callable[[Sequence[Record]], Awaitable[None]]:
        async def write(records: Sequence[Record]) -> None:
            db = await mariadb_connection(mariadb, conformance_database)
            try:
                async with db.cursor() as cursor:
                    places = ["%s"] * len(SQL_ATTRIBUTES)
                    statement = insert_statement(table, places)
                    await cursor.executemany(statement, [row_of(r) for r in records])
            finally:
                db.close()

        return write


async def _execute(server: MariadbServer, database: str, statement: str) -> None:
    db = await mariadb_connection(server, database)
    try:
        async with db.cursor() as cursor:
            await cursor.execute(statement)
    finally:
        db.close()


# -- what MariaDB does differently -------------------------------------------------------


@pytest.fixture(name="maria")
def maria_fixture(mariadb: MariadbServer) -> Backend:
    """A fresh MariaDB database."""
    return mariadb_backend(mariadb)


async def test_the_upsert_is_one_statement_unless_another_key_is_unique(
    make_sql: Factory, maria: Backend
) -> None:
    await maria.run(users_ddl("users"))
    await maria.run('CREATE TABLE staff ("id" VARCHAR(40) PRIMARY KEY, "mail" VARCHAR(99) UNIQUE)')
    users = await make_sql(maria.url)
    staff = await make_sql(maria.url, table="staff", anchor="id")
    with statements() as seen:
        await export_ok(users, [add("a", Title="x")])
    assert [s for s, _ in seen if "ON DUPLICATE KEY UPDATE" in s.upper()], seen
    # Here ON DUPLICATE KEY UPDATE would take a taken mail for the anchor's own row.
    await maria.run("INSERT INTO staff VALUES ('old', 'a@contoso.example')")
    with statements() as seen:
        results = await staff.export(
            [Change(ChangeKind.ADD, "new", {"id": "new", "mail": "a@contoso.example"})]
        )
    assert not [s for s, _ in seen if "DUPLICATE" in s.upper()], seen
    assert isinstance(results[0].error, ConflictError), results[0].error
    assert await maria.rows("SELECT * FROM staff") == [{"id": "old", "mail": "a@contoso.example"}]


async def test_a_case_insensitive_anchor_is_warned_of_and_holds_one_row_per_spelling(
    make_sql: Factory, maria: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    await maria.run(users_ddl("users"))  # the server's default collation: utf8mb4_general_ci
    connector = await make_sql(maria.url)
    warned = [r for r in caplog.records if getattr(r, "action", "") == "sql.anchor_collation"]
    assert len(warned) == 1 and "utf8mb4_general_ci" in warned[0].getMessage()
    await export_ok(connector, [add("abc", Title="lower"), add("ABC", Title="upper")])
    # What the warning is about: the second spelling wrote over the first one's row.
    assert await imported(connector) == {"abc": {"AzureObjectID": "abc", "Title": "upper"}}


async def test_a_binary_anchor_keeps_spellings_apart_without_a_warning(
    make_sql: Factory, maria: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    await maria.run(
        'CREATE TABLE users ("AzureObjectID" VARCHAR(64) COLLATE utf8mb4_bin PRIMARY KEY, '
        '"Title" TEXT)'
    )
    connector = await make_sql(maria.url)
    assert not [r for r in caplog.records if getattr(r, "action", "") == "sql.anchor_collation"]
    await export_ok(connector, [add("abc", Title="lower"), add("ABC", Title="upper")])
    assert await imported(connector) == {
        "ABC": {"AzureObjectID": "ABC", "Title": "upper"},
        "abc": {"AzureObjectID": "abc", "Title": "lower"},
    }


async def test_a_value_too_long_fails_its_change_even_on_a_lenient_server(
    make_sql: Factory, maria: Backend, mariadb: MariadbServer
) -> None:
    await maria.run(
        'CREATE TABLE users ("AzureObjectID" VARCHAR(64) PRIMARY KEY, "Code" VARCHAR(3))'
    )
    connector = await make_sql(maria.url)
    mariadb.sql("SET GLOBAL sql_mode = ''")  # where MariaDB would cut the value short
    try:
        lenient = await make_sql(maria.url)
        results = await lenient.export([add("a", Code="ABCD"), add("b", Code="ABC")])
    finally:
        mariadb.sql("SET GLOBAL sql_mode = DEFAULT")
    assert type(results[0].error) is PermanentError, results[0].error
    assert "error 1406" in str(results[0].error) and results[1].ok
    assert await imported(connector) == {"b": {"AzureObjectID": "b", "Code": "ABC"}}


async def test_four_byte_characters_need_no_charset_in_the_url(
    make_sql: Factory, maria: Backend
) -> None:
    await maria.run(users_ddl("users"))
    assert "charset" not in maria.url
    connector = await make_sql(maria.url)
    await export_ok(connector, [add("🙂", Title="𝄞 clef")])
    assert await maria.rows('SELECT "AzureObjectID", "Title" FROM users') == [
        {"AzureObjectID": "🙂", "Title": "𝄞 clef"}
    ]


async def test_an_unreachable_mariadb_is_transient(
    make_sql: Factory, mariadb: MariadbServer
) -> None:
    url = mariadb.url("conformance").replace(str(mariadb.port), str(free_port()))
    with pytest.raises(TransientError, match=r"error 2003"):
        await make_sql(url)


async def test_a_server_restart_is_transient_then_ridden_out(
    make_sql: Factory, maria: Backend, mariadb: MariadbServer
) -> None:
    await maria.run(users_ddl("users"))
    connector = await make_sql(maria.url, timeout_s=2)
    await export_ok(connector, [add("before", Title="x")])  # a pooled connection
    mariadb.stop()
    try:
        results = await connector.export([add("during", Title="y")])
    finally:
        mariadb.start()
    assert isinstance(results[0].error, TransientError), results[0].error
    await export_ok(connector, [add("during", Title="y")])
    assert sorted(await imported(connector)) == ["before", "during"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (pymysql.err.OperationalError(1213, "Deadlock found"), TransientError),
        (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), TransientError),
        (pymysql.err.OperationalError(2006, "MySQL server has gone away"), TransientError),
        (pymysql.err.OperationalError(2013, "Lost connection to server"), TransientError),
        (pymysql.err.OperationalError(1040, "Too many connections"), TransientError),
        (pymysql.err.IntegrityError(1062, "Duplicate entry 'x' for key 'PRIMARY'"), ConflictError),
        (pymysql.err.DataError(1406, "Data too long for column 'Code'"), PermanentError),
        (pymysql.err.OperationalError(4025, "CONSTRAINT `c` failed"), PermanentError),
        (pymysql.err.OperationalError(1366, "Incorrect string value"), PermanentError),
        (pymysql.err.IntegrityError(1048, "Column 'Code' cannot be null"), PermanentError),
    ],
    ids=lambda v: str(v.args[0]) if isinstance(v, Exception) else v.__name__,
)
def test_error_numbers_decide_what_the_caller_does(
    error: pymysql.err.MySQLError, expected: type[Exception]
) -> None:
    wrapper = sa_exc.OperationalError
    if isinstance(error, pymysql.err.IntegrityError):
        wrapper = sa_exc.IntegrityError
    translated = translate(wrapper("INSERT ...", {"v": "secret"}, error), "cannot write 'x'")
    assert type(translated) is expected
    assert str(translated) == f"cannot write 'x': {error.args[1]} (error {error.args[0]})"


async def test_uuid_anchor_in_mariadbs_uuid_type(make_sql: Factory, maria: Backend) -> None:
    await maria.run('CREATE TABLE users ("AzureObjectID" UUID PRIMARY KEY, "Title" TEXT)')
    connector = await make_sql(maria.url)
    anchor = "de4841f1-cb92-48e5-9056-29a36a0653c2"
    results = await connector.export([add(anchor, Title="x"), add("not-a-uuid", Title="y")])
    assert results[0].ok and isinstance(results[1].error, PermanentError), results[1].error
    assert await imported(connector) == {anchor: {"AzureObjectID": anchor, "Title": "x"}}


async def test_a_missing_database_is_transient_and_the_password_never_shown(
    make_sql: Factory, mariadb: MariadbServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TransientError) as caught:
        await make_sql(mariadb.url("no_such_database"))
    assert "no_such_database" in str(caught.value) and "error 1049" in str(caught.value)
    assert mariadb.password not in caplog.text + str(caught.value)


async def test_the_mysql_url_gets_the_same_treatment(make_sql: Factory, maria: Backend) -> None:
    await maria.run(users_ddl("users"))
    connector = await make_sql(maria.url.replace("mariadb+aiomysql", "mysql+aiomysql"))
    assert (await connector.schema()).get("IsActive").data_type is DataType.BOOLEAN  # type: ignore[union-attr]
    with statements() as seen:
        await export_ok(connector, [add("a", IsActive=True, Title="🙂")])
    assert [s for s, _ in seen if "ON DUPLICATE KEY UPDATE" in s.upper()], seen
    assert await imported(connector) == {
        "a": {"AzureObjectID": "a", "IsActive": True, "Title": "🙂"}
    }
