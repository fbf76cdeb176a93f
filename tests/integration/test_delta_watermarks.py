"""Delta imports through the host: a full import stores the watermark, a delta applies
only what changed and moves it, the watermark outlives a restart, and a delta without
a usable watermark falls back to a full import, recorded in its run. What the space
keeps is checked with the space on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.config import load_config
from ecmahost.engine.host import Host
from ecmahost.engine.scim.app import create_app
from ecmahost.engine.scim.health import _connector as health_detail
from ecmahost.engine.space.database import migrate, open_engine
from ecmahost.engine.space.models import Run
from ecmahost.engine.space.records import Staging
from ecmahost.engine.space.states import Op, RunKind, RunStatus
from ecmahost.engine.workers import delta as delta_module
from ecmahost.engine.workers.state import ConnectorState
from sqlalchemy import select

from tests.conftest import TOKEN

NAME = "SQL"
SPACE_VARIABLE = "ECMAHOST_TEST_SPACE_URL"
"""The variable ``host.database_url`` names: the URL holds the password."""


def sql_toml(delta: bool = True, **extra: object) -> str:
    lines = "\n".join(f"{k} = {v}" for k, v in extra.items())
    settings = (
        '\n[connectors.SQL.settings.delta]\nwatermark_column = "changed"\n'
        'soft_delete_column = "deleted"\n'
        if delta
        else ""
    )
    return f"""
[connectors.SQL]
type = "sql"
token = "{TOKEN}"
autosync_minutes = 0
{lines}

[connectors.SQL.settings]
url = "sqlite+aiosqlite:///people.db"
table = "people"
anchor = "id"
page_size = 3
{settings}"""


class Target:
    """The people table in a SQLite file beside the configuration, written directly."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = 0
        self.run(
            'CREATE TABLE people (id TEXT PRIMARY KEY, "name" TEXT, changed TIMESTAMP, '
            "deleted BOOLEAN NOT NULL DEFAULT 0)"
        )

    def run(self, statement: str, *parameters: object) -> None:
        with closing(sqlite3.connect(self.path)) as db:
            db.execute(statement, parameters)
            db.commit()

    def tick(self) -> str:
        self.clock += 1
        return f"2026-01-01 10:{self.clock // 60:02d}:{self.clock % 60:02d}"

    def put(self, anchor: str, name: str) -> None:
        self.run(
            "INSERT INTO people (id, name, changed) VALUES (?, ?, ?) ON CONFLICT (id) "
            "DO UPDATE SET name = excluded.name, changed = excluded.changed, deleted = 0",
            anchor,
            name,
            self.tick(),
        )

    def soft_delete(self, anchor: str) -> None:
        self.run("UPDATE people SET deleted = 1, changed = ? WHERE id = ?", self.tick(), anchor)

    def live(self) -> dict[str, str]:
        with closing(sqlite3.connect(self.path)) as db:
            return dict(db.execute("SELECT id, name FROM people WHERE deleted = 0"))


@pytest.fixture
async def host_toml(space_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ``[host]`` lines that put the hosts' space on ``space_url``'s kind of
    database: the SQLite file in the state folder, or that PostgreSQL database,
    migrated first (as ``ecmahost migrate`` does: hosts sharing it do not)."""
    if space_url.startswith("sqlite"):
        return ""
    engine = open_engine(space_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    monkeypatch.setenv(SPACE_VARIABLE, space_url)
    return f'database_url = "env:{SPACE_VARIABLE}"'


@pytest.fixture
def setup(
    write_config: Callable[[str, str], Path], host_toml: str
) -> tuple[Callable[..., AsyncIterator[Host]], Target]:
    config = write_config(sql_toml(), host_toml)
    target = Target(config.parent / "people.db")

    @asynccontextmanager
    async def opened() -> AsyncIterator[Host]:
        host = Host(load_config(config))
        await host.open()
        try:
            yield host
        finally:
            await host.close()

    return opened, target


async def view(host: Host) -> dict[str, str]:
    assert host.space is not None
    return {o.anchor: str(o.attributes["name"]) async for o in host.space.iter_objects(NAME)}


async def runs(host: Host) -> list[Run]:
    assert host.space is not None
    async with host.space.read() as session:
        return list(await session.scalars(select(Run).order_by(Run.id)))


async def delta(host: Host):  # type: ignore[no-untyped-def]
    deltas = host.runtime(NAME).importer.deltas
    assert deltas is not None
    return await deltas.run()


async def test_delta_applies_only_the_changes_and_survives_a_restart(setup) -> None:  # type: ignore[no-untyped-def]
    opened, target = setup
    for i in range(10):
        target.put(f"u{i}", f"Person {i}")
    async with opened() as host:
        full = await host.runtime(NAME).importer.full_import()
        assert full.ok and full.seen == 10
        assert await host.space.watermark(NAME) == "2026-01-01T10:00:10"  # type: ignore[union-attr]

        target.put("u1", "Renamed")
        target.put("u20", "Newcomer")
        target.soft_delete("u2")
        report = await delta(host)
        assert report.ok
        counted = {k: v for k, v in report.counts.items() if v}
        assert counted == {"read": 3, "updated": 1, "added": 1, "removed": 1}
        assert await view(host) == target.live()

    target.put("u3", "After the restart")
    async with opened() as host:  # a new host on the same state folder
        report = await delta(host)
        assert report.counts["read"] == 1  # only the change since the stored watermark
        assert await view(host) == target.live()
        host.states[NAME] = ConnectorState(NAME)
        detail = await health_detail(host, NAME)  # /health?detail=1's part of the connector
        assert detail["last_delta"]["counts"]["read"] == 1
        assert detail["last_import"]["counts"]["seen"] == 10
        kinds = [(r.kind, r.status) for r in await runs(host)]
        assert kinds == [
            (RunKind.IMPORT, RunStatus.OK),
            (RunKind.DELTA, RunStatus.OK),
            (RunKind.DELTA, RunStatus.OK),
        ]


async def test_without_a_watermark_a_delta_falls_back_to_a_full_import(setup) -> None:  # type: ignore[no-untyped-def]
    opened, target = setup
    target.put("u1", "One")
    async with opened() as host:
        report = await delta(host)
        assert report.ok and report.seen == 1  # the full import's report
        assert await view(host) == {"u1": "One"}
        fell_back, full = await runs(host)
        assert (fell_back.kind, fell_back.status) == (RunKind.DELTA, RunStatus.FELL_BACK)
        assert "no watermark stored" in (fell_back.error or "")
        assert (full.kind, full.status) == (RunKind.IMPORT, RunStatus.OK)
        assert await host.space.watermark(NAME) is not None  # type: ignore[union-attr]


async def test_an_expired_watermark_falls_back_to_a_full_import(setup) -> None:  # type: ignore[no-untyped-def]
    opened, target = setup
    for i in range(5):
        target.put(f"u{i}", f"Person {i}")
    async with opened() as host:
        assert (await host.runtime(NAME).importer.full_import()).ok
        # The table restored from an older backup: its newest row predates the watermark.
        target.run("DELETE FROM people WHERE id IN ('u3', 'u4')")
        target.run("UPDATE people SET name = 'Restored' WHERE id = 'u0'")
        report = await delta(host)
        assert report.ok
        last_two = (await runs(host))[-2:]
        assert [(r.kind, r.status) for r in last_two] == [
            (RunKind.DELTA, RunStatus.FELL_BACK),
            (RunKind.IMPORT, RunStatus.OK),
        ]
        assert "watermark expired" in (last_two[0].error or "")
        assert await view(host) == target.live()  # the full import removed u3 and u4
        assert await host.space.watermark(NAME) == "2026-01-01T10:00:03"  # type: ignore[union-attr]


async def test_a_soft_deletion_keeps_an_object_whose_export_is_open(setup) -> None:  # type: ignore[no-untyped-def]
    opened, target = setup
    target.put("u1", "One")
    async with opened() as host:
        assert (await host.runtime(NAME).importer.full_import()).ok
        space = host.space
        assert space is not None
        [stored] = [o async for o in space.iter_objects(NAME)]
        # An update from Entra, staged and waiting for its export.
        await space.update(
            NAME, stored.id, lambda before: Staging(before.attributes, True, Op.UPSERT)
        )
        target.soft_delete("u1")
        report = await delta(host)
        assert report.counts["removed"] == 0
        assert await view(host) == {"u1": "One"}


async def test_delta_minutes_schedules_deltas_beside_full_imports(
    write_config: Callable[[str], Path],
) -> None:
    config = write_config(sql_toml(delta_minutes=5).replace("autosync_minutes = 0", ""))
    target = Target(config.parent / "people.db")
    target.put("u1", "One")
    host = Host(load_config(config))
    await host.open(serve=True)
    try:
        await host.started()  # the start-up full import stored a watermark
        scheduler = host._scheduler
        assert scheduler is not None
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert jobs["delta:SQL"].trigger.interval == timedelta(minutes=5)
        assert jobs["import:SQL"].trigger.interval == timedelta(minutes=120)
        target.put("u2", "Two")
        await jobs["delta:SQL"].func()  # what the schedule does every 5 minutes
        async with asyncio.timeout(10):
            while (await runs(host))[-1].kind != RunKind.DELTA:
                await asyncio.sleep(0.05)
            while (await runs(host))[-1].status == RunStatus.RUNNING:
                await asyncio.sleep(0.05)
        last = (await runs(host))[-1]
        assert (last.status, last.counts["read"]) == (RunStatus.OK, 1)
        assert await view(host) == {"u1": "One", "u2": "Two"}
    finally:
        await host.close()


async def test_delta_minutes_needs_a_connector_with_deltas(
    write_config: Callable[[str], Path],
) -> None:
    config = write_config(sql_toml(delta=False, delta_minutes=5))
    Target(config.parent / "people.db")
    host = Host(load_config(config))
    with pytest.raises(ConfigError, match="delta_minutes"):
        await host.open()
    await host.close()


SCRIPT = Path(__file__).resolve().parents[1] / "fixtures" / "scripts" / "changelog.py"


def script_toml(delta_import: str | None = None) -> str:
    command = json.dumps([sys.executable, str(SCRIPT)])
    roles = ", ".join(f"{r} = {command}" for r in ("schema", "import", "export"))
    waiting = json.dumps([sys.executable, delta_import]) if delta_import else command
    roles += f", delta_import = {waiting}"
    return f"""
[connectors.Log]
type = "script"
token = "{TOKEN}"
autosync_minutes = 0

[connectors.Log.settings]
scripts = {{ {roles} }}
parameters = {{ Log = "log.jsonl" }}
"""


async def test_an_anchor_changed_twice_in_one_delta_ends_as_its_last_change(
    write_config: Callable[[str, str], Path], host_toml: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(script_toml(), host_toml)
    log = config.parent / "log.jsonl"

    def write(*changes: tuple[str, str | None]) -> None:
        lines = [
            {"seq": seq, "anchor": a, "deleted": True}
            if name is None
            else {"seq": seq, "anchor": a, "attributes": {"id": a, "name": name}}
            for seq, (a, name) in enumerate(changes, 1)
        ]
        log.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")

    write(("a", "First"), ("b", "B"))
    host = Host(load_config(config))
    await host.open()
    try:
        importer = host.runtime("Log").importer
        assert (await importer.full_import()).ok
        monkeypatch.setattr(delta_module, "BATCH_SIZE", 1)  # each change its own batch
        write(
            ("a", "First"),
            ("b", "B"),
            ("a", "Second"),
            ("b", None),
            ("a", "Third"),
            ("c", None),
            ("c", "Back"),
        )
        assert importer.deltas is not None
        report = await importer.deltas.run()
        assert report.counts["read"] == 5
        assert await view_of(host, "Log") == {"a": "Third", "c": "Back"}
    finally:
        await host.close()


async def view_of(host: Host, name: str) -> dict[str, str]:
    assert host.space is not None
    return {o.anchor: str(o.attributes["name"]) async for o in host.space.iter_objects(name)}


async def test_a_delta_holds_back_export_batches_until_it_ends(
    write_config: Callable[[str], Path],
) -> None:
    # A delta_import script that, given a watermark, waits for a file the test writes.
    config = write_config(script_toml(delta_import="wait.py"))
    folder = config.parent
    (folder / "log.jsonl").write_text("", encoding="utf-8")
    (folder / "wait.py").write_text(
        "import json, pathlib, sys, time\n"
        "header = json.loads(sys.stdin.readline())\n"
        "if header['watermark'] is not None:\n"
        "    pathlib.Path('started').touch()\n"
        "    while not pathlib.Path('go').exists(): time.sleep(0.02)\n"
        'print(json.dumps({"watermark": 1}))\n',
        encoding="utf-8",
    )
    host = Host(load_config(config))
    await host.open()
    try:
        importer = host.runtime("Log").importer
        assert (await importer.full_import()).ok and importer.deltas is not None
        running = asyncio.create_task(importer.deltas.run())
        async with asyncio.timeout(10):
            while not (folder / "started").exists():
                await asyncio.sleep(0.02)
        gate = importer._gate
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3), gate.export():
                pass
        (folder / "go").touch()
        assert (await running).ok
        async with asyncio.timeout(1), gate.export():
            pass
    finally:
        await host.close()


ADMIN = "admin-token-0123456789"


@pytest.mark.parametrize("with_deltas", [True, False])
async def test_the_admin_route_asks_for_a_delta(
    write_config: Callable[[str, str], Path], with_deltas: bool
) -> None:
    config = write_config(sql_toml(delta=with_deltas), f'admin_token = "{ADMIN}"')
    target = Target(config.parent / "people.db")
    target.put("u1", "One")
    host = Host(load_config(config))
    client = TestClient(TestServer(create_app(host)))
    await client.start_server()
    try:
        await host.started()
        target.put("u2", "Two")
        response = await client.post(
            "/admin/imports/SQL?delta=1", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        if not with_deltas:
            assert response.status == 409
            return
        assert (response.status, await response.json()) == (
            202,
            {"requested": "SQL", "delta": True},
        )
        async with asyncio.timeout(10):
            while (last := (await runs(host))[-1]).kind != RunKind.DELTA or (
                last.status == RunStatus.RUNNING
            ):
                await asyncio.sleep(0.05)
        assert (last.status, last.counts["read"]) == (RunStatus.OK, 1)
    finally:
        await client.close()
