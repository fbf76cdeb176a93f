"""Full imports of a real CSV file that went empty or missing keep the view (on SQLite
and on PostgreSQL)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from ecmahost.connectors.csv.connector import CsvConnector, CsvSettings
from ecmahost.engine.space import ConnectorSpace
from ecmahost.engine.space.models import Run
from ecmahost.engine.space.states import RunStatus
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.importer import Importer
from ecmahost.engine.workers.state import Phase
from sqlalchemy import select

NAME = "CSV"
SAMPLES = Path(__file__).resolve().parents[2] / "config"
HEADER = '"AzureObjectID";"IsActive";"DisplayName";"EmployeeId";"Title";"UserName";"Email"\n'


def _rows(count: int) -> str:
    return "".join(f'"id{i}";"True";"Person {i}";"{i}";"";"u{i}";"u{i}@x"\n' for i in range(count))


async def _importer(space: ConnectorSpace, tmp_path: Path, **settings: object) -> Importer:
    schema = shutil.copy(SAMPLES / "Schema.xml", tmp_path / "Schema.xml")
    values = {"path": "users.csv", "schema_file": schema, **settings}
    connector = CsvConnector(NAME, CsvSettings.model_validate(values), tmp_path)
    connector.first_start = not await space.has_history(NAME)
    await connector.open()
    return Importer(NAME, connector, space, RunGate())


async def _readable(space: ConnectorSpace) -> int:
    total, _ = await space.query(NAME, None, 1, 10)
    return total


async def _last_run(space: ConnectorSpace) -> Run:
    async with space.read() as session:
        return (await session.scalars(select(Run).order_by(Run.id.desc()))).first()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda f: f.write_text("", encoding="utf-8"), id="emptied"),
        pytest.param(lambda f: f.write_text(HEADER, encoding="utf-8"), id="header-only"),
        pytest.param(lambda f: f.unlink(), id="deleted"),
    ],
)
async def test_a_damaged_file_is_refused_and_the_users_stay(
    space: ConnectorSpace, tmp_path: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "users.csv").write_text(HEADER + _rows(30), encoding="utf-8")
    first = await (await _importer(space, tmp_path)).full_import()
    assert first.ok and await _readable(space) == 30
    damage(tmp_path / "users.csv")  # type: ignore[operator]

    # A restart: the connector opens again, then imports.
    importer = await _importer(space, tmp_path, seed=SAMPLES / "InputFile.txt")
    with caplog.at_level(logging.ERROR):
        report = await importer.full_import()

    assert not report.ok and report.refused is not None
    assert importer.state.phase is Phase.DEGRADED
    assert importer.state.reason == f"import refused: {report.refused}"
    assert await _readable(space) == 30
    run = await _last_run(space)
    assert run.status == RunStatus.REFUSED and run.error and report.refused in run.error
    assert any(getattr(r, "action", None) == "import.refused" for r in caplog.records)
    # Never re-seeded: the sample's four users would have replaced the thirty.
    assert not (tmp_path / "users.csv").exists() or "id0" not in _sample_text()


def _sample_text() -> str:
    return (SAMPLES / "InputFile.txt").read_text(encoding="utf-8")


async def test_allow_removals_empties_the_view(space: ConnectorSpace, tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text(HEADER + _rows(30), encoding="utf-8")
    importer = await _importer(space, tmp_path)
    await importer.full_import()
    (tmp_path / "users.csv").write_text(HEADER, encoding="utf-8")

    report = await importer.full_import(allow_removals=True)

    assert report.ok and report.counts["removed"] == 30
    assert await _readable(space) == 0


async def test_removals_beyond_the_limit_are_refused_but_within_it_done(
    space: ConnectorSpace, tmp_path: Path
) -> None:
    (tmp_path / "users.csv").write_text(HEADER + _rows(200), encoding="utf-8")
    importer = await _importer(space, tmp_path)
    await importer.full_import()

    (tmp_path / "users.csv").write_text(HEADER + _rows(100), encoding="utf-8")  # half gone
    refused = await importer.full_import()
    (tmp_path / "users.csv").write_text(HEADER + _rows(180), encoding="utf-8")  # 20 of 200
    done = await importer.full_import()

    assert refused.refused is not None and "100 of 200" in refused.refused
    assert done.ok and done.counts["removed"] == 20
    assert await _readable(space) == 180


async def test_the_seed_fills_only_the_first_start(space: ConnectorSpace, tmp_path: Path) -> None:
    importer = await _importer(space, tmp_path, seed=SAMPLES / "InputFile.txt")
    assert (await importer.full_import()).seen == 4

    (tmp_path / "users.csv").unlink()
    again = await _importer(space, tmp_path, seed=SAMPLES / "InputFile.txt")

    assert not (tmp_path / "users.csv").exists()
    report = await again.full_import()
    assert report.refused is not None and "target missing" in report.refused
