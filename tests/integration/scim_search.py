"""A SCIM filter asked of the space the way the SCIM app asks it (``engine/scim/users.py``):
its WHERE clause, and the ``eq`` that SQLite's lookup may answer instead. On PostgreSQL,
which has no lookup, the clause alone selects: a test passing only the ``eq`` would get
every object back there."""

from __future__ import annotations

from ecmahost.connectors.base import Schema
from ecmahost.engine.config import Deprovision
from ecmahost.engine.scim.filter import parse_filter
from ecmahost.engine.scim.resource import ResourceMapper
from ecmahost.engine.space import ConnectorSpace, StoredObject
from ecmahost.engine.space.search import eq_lookup, filter_clause

__all__ = ["search"]


async def search(
    space: ConnectorSpace, connector: str, schema: Schema, text: str, count: int = 1000
) -> tuple[int, list[StoredObject]]:
    """The total and the first ``count`` objects of ``connector`` the filter ``text``
    selects."""
    mapper = ResourceMapper(schema, Deprovision())
    node = parse_filter(text)
    where = filter_clause(mapper, connector, node)
    return await space.query(connector, where, 1, count, eq_lookup(mapper, node))
