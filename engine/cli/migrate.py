"""``ecmahost migrate [--check]``: the database's schema against this version's.

On SQLite, serving migrates at start, so an upgrade needs no step of its own;
``--check`` tells before a restart what that start will do (exit 1 when it will
migrate), and without it the migrations run now, with the host stopped, to keep the
start short. A PostgreSQL database that several hosts share is migrated only by this
command (hosts refuse a schema other than their own)."""

from __future__ import annotations

from ecmahost.engine.config import HostConfig
from ecmahost.engine.space.database import (
    database_file,
    migrate,
    open_engine,
    pending_migrations,
)
from sqlalchemy import make_url

__all__ = ["run_migrations"]


async def run_migrations(config: HostConfig, *, check_only: bool) -> int:
    database: object = database_file(config.state_dir)
    if config.shared_database:
        database = make_url(config.database_url).render_as_string(hide_password=True)
    elif not database_file(config.state_dir).exists():  # opening it would create it
        print(f"no database at {database} yet: the first start creates it at the newest schema")
        return 0
    engine = open_engine(config.database_url, config.host.synchronous, writer=True)
    try:
        current, pending = await pending_migrations(engine)
        if not pending:
            print(f"database {database} is at the newest schema ({current})")
            return 0
        steps = f"{len(pending)} migration(s) {', '.join(pending)}"
        if check_only:
            print(f"database {database} at schema {current or '(none)'} needs {steps};")
            if config.shared_database:
                print("run `ecmahost migrate` to apply them, with every host stopped")
            else:
                print("the next start applies them (take a backup first: ecmahost backup PATH)")
            return 1
        await migrate(engine)
        print(f"database {database} migrated from schema {current or '(none)'}: {steps}")
        return 0
    finally:
        await engine.dispose()
