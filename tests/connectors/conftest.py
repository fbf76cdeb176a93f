"""Fixtures of the connector tests: the session's PostgreSQL server."""

from tests.connectors.postgres import postgres_fixture

__all__ = ["postgres_fixture"]
