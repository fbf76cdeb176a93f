"""Fixtures of the SQL connector's tests: the session's PostgreSQL server."""

from tests.connectors.sql.postgres import postgres_fixture

__all__ = ["postgres_fixture"]
