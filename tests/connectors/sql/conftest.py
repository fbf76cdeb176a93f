"""Fixtures of the SQL connector's tests: the session's PostgreSQL and MariaDB servers."""

from tests.connectors.sql.mariadb import mariadb_fixture
from tests.connectors.sql.postgres import postgres_fixture

__all__ = ["mariadb_fixture", "postgres_fixture"]
