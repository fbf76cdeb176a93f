"""Alembic environment: runs on the connection ecmahost hands it (see ``space.database``)."""

from __future__ import annotations

from alembic import context
from ecmahost.engine.space.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - ecmahost always passes its connection
    raise RuntimeError("run migrations through ecmahost.engine.space.database.migrate")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
