"""CSV files as people and spreadsheets leave them: a BOM, a wrong delimiter, a quote
left open, an anchor twice."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from ecmahost.connectors.csv.connector import CsvConnector, CsvSettings
from ecmahost.connectors.exceptions import PermanentError
from ecmahost.engine.space import ConnectorSpace
from ecmahost.engine.space.database import migrate, open_engine, sessionmaker_for, sqlite_url
from ecmahost.engine.workers import importer as importer_module
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.importer import Importer

SAMPLES = Path(__file__).resolve().parents[3] / "config"
HEADER = '"AzureObjectID";"IsActive";"DisplayName";"EmployeeId";"Title";"UserName";"Email"\n'


def _row(anchor: str, name: str = "Someone") -> str:
    return f'"{anchor}";"True";"{name}";"1";"";"u";"u@x"\n'


async def _connector(tmp_path: Path, data: bytes, **settings: object) -> CsvConnector:
    (tmp_path / "users.csv").write_bytes(data)
    schema = shutil.copy(SAMPLES / "Schema.xml", tmp_path / "Schema.xml")
    values = {"path": "users.csv", "schema_file": schema, **settings}
    connector = CsvConnector("csv", CsvSettings.model_validate(values), tmp_path)
    await connector.open()
    return connector


async def _anchors(connector: CsvConnector) -> list[str]:
    return [record.anchor async for record in connector.full_import()]


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "cp1252"])
async def test_a_utf8_bom_is_recognised_whatever_the_encoding(
    tmp_path: Path, encoding: str
) -> None:
    data = b"\xef\xbb\xbf" + (HEADER + _row("a", "Zoë")).encode("utf-8")
    connector = await _connector(tmp_path, data, encoding=encoding)

    [record] = [r async for r in connector.full_import()]
    assert record.anchor == "a" and record.attributes["DisplayName"] == "Zoë"
    from ecmahost.connectors.base import Change, ChangeKind

    await connector.export([Change(ChangeKind.REPLACE, "a", {"DisplayName": "Zoé"})])
    assert (tmp_path / "users.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert [r.attributes["DisplayName"] async for r in connector.full_import()] == ["Zoé"]


async def test_a_header_on_another_delimiter_names_both(tmp_path: Path) -> None:
    data = (HEADER + _row("a")).replace(";", ",").encode()
    connector = await _connector(tmp_path, data)

    with pytest.raises(PermanentError) as raised:
        await _anchors(connector)
    message = str(raised.value)
    assert "AzureObjectID" in message
    assert "looked for columns separated by ';'" in message
    assert "the header seems to use ','" in message


async def test_an_unterminated_quote_is_a_warning_naming_the_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = '"b";"True";"Open quote;"1";"";"u";"u@x"\n'
    data = (HEADER + _row("a") + broken + _row("c") + _row("d")).encode()
    connector = await _connector(tmp_path, data)

    with caplog.at_level(logging.WARNING):
        anchors = await _anchors(connector)

    assert anchors == ["a", "c", "d"]
    [warning] = [r for r in caplog.records if getattr(r, "action", "") == "csv.import.bad_quote"]
    assert warning.line == 3 and "line 3" in warning.getMessage()  # type: ignore[attr-defined]


async def test_a_quote_left_open_at_the_end_costs_its_line_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = (HEADER + _row("a") + '"b";"True";"never closed\n').encode()
    connector = await _connector(tmp_path, data)

    with caplog.at_level(logging.WARNING):
        assert await _anchors(connector) == ["a"]
    assert any("line 3" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("batch_size", [5000, 1], ids=["same-batch", "later-batch"])
async def test_a_duplicated_anchor_keeps_the_first_and_names_the_line(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
) -> None:
    # Within a batch the first record is at hand; across batches the space knows
    # which objects this run has already read.
    monkeypatch.setattr(importer_module, "BATCH_SIZE", batch_size)
    data = (HEADER + _row("a", "First") + _row("b") + _row("a", "Second")).encode()
    connector = await _connector(tmp_path, data)
    engine = open_engine(sqlite_url(tmp_path))
    await migrate(engine)
    try:
        space = ConnectorSpace(sessionmaker_for(engine))
        with caplog.at_level(logging.WARNING):
            report = await Importer("csv", connector, space, RunGate()).full_import()
        _, objects = await space.query("csv", None, 1, 10)
    finally:
        await engine.dispose()

    assert report.ok and report.counts["duplicate"] == 1
    names = {o.anchor: o.attributes["DisplayName"] for o in objects}
    assert names == {"a": "First", "b": "Someone"}
    [warning] = [r for r in caplog.records if "already read" in r.getMessage()]
    assert "users.csv line 4" in warning.getMessage()
    if batch_size > 1:
        assert "users.csv line 2" in warning.getMessage()
