"""CsvConnector against real files: the sample, faithful round trips, crash safety."""

from __future__ import annotations

import asyncio
import csv
import errno
import fcntl
import io
import logging
import os
import shutil
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from ecmahost.connectors.base import Capability, Change, ChangeKind, Record, Value
from ecmahost.connectors.csv.connector import CsvConnector, CsvSettings
from ecmahost.connectors.csv.file_lock import lock_path
from ecmahost.connectors.exceptions import ConfigError, PermanentError, TransientError
from pydantic import ValidationError

SAMPLES = Path(__file__).resolve().parents[3] / "config"
SAMPLE_HEADER = [
    "AzureObjectID",
    "IsActive",
    "DisplayName",
    "EmployeeId",
    "Title",
    "UserName",
    "Email",
]
SPECIAL = {
    "semicolon": "Vance; Adele",
    "quote": 'She said "hi"',
    "newline": "line one\nline two",
    "crlf": "line one\r\nline two",
    "formula": "=cmd|' /C calc'!A0",
    "non-ascii": "Zoë Ångström",
    "everything": ' ;"=\r\n\n"";',
}

Factory = Callable[..., Awaitable[CsvConnector]]


def _write_schema(path: Path, *attributes: tuple[str, str]) -> Path:
    """A Schema.xml whose first attribute is the anchor."""
    rows = "".join(
        f"<SchemaAttribute><Name>{name}</Name><DataType>{data_type}</DataType>"
        f"<IsAnchor>{int(i == 0)}</IsAnchor><IsMultiValued>0</IsMultiValued></SchemaAttribute>"
        for i, (name, data_type) in enumerate(attributes)
    )
    path.write_text(
        "<Schema><Types><SchemaType><Name>Person</Name>"
        f"<Attributes>{rows}</Attributes></SchemaType></Types></Schema>",
        encoding="utf-8",
    )
    return path


def _write_csv(path: Path, rows: Sequence[Sequence[str]], encoding: str = "utf-8") -> None:
    with path.open("w", encoding=encoding, newline="") as out:
        csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)


def _file_rows(path: Path, encoding: str = "utf-8", delimiter: str = ";") -> list[list[str]]:
    """The file's bytes parsed by the csv module alone, header first."""
    text = path.read_bytes().decode(encoding)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


async def _records(connector: CsvConnector) -> dict[str, Record]:
    found: dict[str, Record] = {}
    async for record in connector.full_import():
        assert record.anchor not in found
        found[record.anchor] = record
    return found


def _add(anchor: str, **attributes: Value) -> Change:
    return Change(ChangeKind.ADD, anchor, attributes)


def _replace(anchor: str, **attributes: Value) -> Change:
    return Change(ChangeKind.REPLACE, anchor, attributes)


def _delete(anchor: str) -> Change:
    return Change(ChangeKind.DELETE, anchor)


def _names(folder: Path) -> list[str]:
    """Every entry of ``folder``: a stray temporary file shows up here, whatever its name."""
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    return Path(shutil.copy(SAMPLES / "Schema.xml", tmp_path / "Schema.xml"))


@pytest.fixture
def typed_schema(tmp_path: Path) -> Path:
    return _write_schema(
        tmp_path / "Typed.xml",
        ("Id", "String"),
        ("Name", "String"),
        ("Age", "Integer"),
        ("Active", "Boolean"),
    )


@pytest.fixture
def make(tmp_path: Path, schema_file: Path) -> Factory:
    """Build and open a connector over ``tmp_path/users.csv`` with the sample schema."""

    async def factory(**settings: Any) -> CsvConnector:
        values = {"path": "users.csv", "schema_file": schema_file, **settings}
        connector = CsvConnector("csv", CsvSettings(**values), tmp_path)
        await connector.open()
        return connector

    return factory


# -- settings --------------------------------------------------------------------


def test_declares_import_export_and_rename() -> None:
    assert CsvConnector.type_name == "csv"
    assert CsvConnector.settings_model is CsvSettings
    assert CsvConnector.capabilities == {Capability.IMPORT, Capability.EXPORT, Capability.RENAME}


@pytest.mark.parametrize(
    "settings, problem",
    [
        ({"delimiter": ";;"}, "exactly one character"),
        ({"delimiter": ""}, "exactly one character"),
        ({"delimiter": '"'}, "double quote"),
        ({"encoding": "klingon-8"}, "unknown text encoding 'klingon-8'"),
        ({"encoding": "rot13"}, "unknown text encoding 'rot13'"),
        ({"delimiter": "§", "encoding": "ascii"}, "cannot be written in 'ascii'"),
        ({"colour": "blue"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        CsvSettings(path="users.csv", schema_file="Schema.xml", **settings)


# -- open ------------------------------------------------------------------------


async def test_sample_seed_imports_four_records(make: Factory, tmp_path: Path) -> None:
    connector = await make(seed=SAMPLES / "InputFile.txt")

    records = await _records(connector)

    assert (tmp_path / "users.csv").read_bytes() == (SAMPLES / "InputFile.txt").read_bytes()
    assert len(records) == 4
    bianca = records["ba8c90b5-176c-499d-9dbb-dd7027dd9fd3"]
    assert bianca.attributes == {
        "AzureObjectID": "ba8c90b5-176c-499d-9dbb-dd7027dd9fd3",
        "DisplayName": "Bianca Pisani",
        "UserName": "BiancaP@Contoso.OnMicrosoft.com",
        "Title": "Salesperson",
        "IsActive": True,
    }
    adele = records["de4841f1-cb92-48e5-9056-29a36a0653c2"].attributes
    assert adele["DisplayName"] == "Adele Vance"
    assert adele["Title"] == "Retail Manager"
    assert adele["Email"] == "AdeleV@contoso.OnMicrosoft.com"
    assert {r.attributes["DisplayName"] for r in records.values()} == {
        "Adele Vance",
        "Alex Wilber",
        "Bianca Pisani",
        "Allan Deyoung",
    }
    for record in records.values():
        assert record.attributes["IsActive"] is True
        assert "EmployeeId" not in record.attributes  # "" is absent, not an empty string


async def test_open_without_seed_writes_the_header(make: Factory, tmp_path: Path) -> None:
    connector = await make()

    assert (tmp_path / "users.csv").read_bytes() == (
        b'"AzureObjectID";"DisplayName";"UserName";"Title";"EmployeeId";"Email";"IsActive"\n'
    )
    assert await _records(connector) == {}
    assert (await connector.schema()).anchor.name == "AzureObjectID"


async def test_open_keeps_an_existing_file(make: Factory, tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_bytes(b'"AzureObjectID"\n"a"\n')

    await make(seed=SAMPLES / "InputFile.txt")

    assert (tmp_path / "users.csv").read_bytes() == b'"AzureObjectID"\n"a"\n'


async def test_open_with_a_missing_seed_is_a_config_error(make: Factory, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"seed file not found: {tmp_path / 'nope.csv'}"):
        await make(seed="nope.csv")
    assert not (tmp_path / "users.csv").exists()


async def test_open_with_a_broken_schema_is_a_config_error(make: Factory, tmp_path: Path) -> None:
    broken = tmp_path / "Broken.xml"
    broken.write_text("<Schema>", encoding="utf-8")

    with pytest.raises(ConfigError, match=str(broken)):
        await make(schema_file="Broken.xml")


async def test_open_in_a_missing_folder_is_transient(make: Factory, tmp_path: Path) -> None:
    with pytest.raises(TransientError, match=str(tmp_path / "gone" / "users.csv")):
        await make(path="gone/users.csv")


# -- round trips -----------------------------------------------------------------


async def test_special_values_round_trip_exactly(make: Factory, tmp_path: Path) -> None:
    connector = await make()
    changes = [
        _add(f"id-{key}", DisplayName=value, Title=value, IsActive=False)
        for key, value in SPECIAL.items()
    ]
    changes.append(_add(SPECIAL["everything"], DisplayName="odd anchor"))

    results = await connector.export(changes)

    assert all(result.ok for result in results)
    header, *rows = _file_rows(tmp_path / "users.csv")
    by_anchor = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    for key, value in SPECIAL.items():
        assert by_anchor[f"id-{key}"]["DisplayName"] == value
        assert by_anchor[f"id-{key}"]["IsActive"] == "False"
    assert by_anchor[SPECIAL["everything"]]["DisplayName"] == "odd anchor"
    raw = (tmp_path / "users.csv").read_bytes()
    assert b"\"=cmd|' /C calc'!A0\"" in raw  # no spreadsheet-escaping prefix
    assert "Zoë Ångström".encode() in raw
    records = await _records(connector)
    for key, value in SPECIAL.items():
        assert records[f"id-{key}"].attributes == {
            "AzureObjectID": f"id-{key}",
            "DisplayName": value,
            "Title": value,
            "IsActive": False,
        }
    assert records[SPECIAL["everything"]].attributes["DisplayName"] == "odd anchor"


async def test_types_are_written_as_text_and_read_case_insensitively(
    make: Factory, typed_schema: Path, tmp_path: Path
) -> None:
    connector = await make(schema_file=typed_schema)
    await connector.export([_add("a", Age=-42, Active=True), _add("b", Age=0, Active=False)])

    assert _file_rows(tmp_path / "users.csv")[1:] == [
        ["a", "", "-42", "True"],
        ["b", "", "0", "False"],
    ]
    _write_csv(
        tmp_path / "users.csv",
        [["Id", "Age", "Active"], ["x", "7", "TRUE"], ["y", "+3", "false"], ["z", "", ""]],
    )
    records = await _records(connector)
    assert records["x"].attributes == {"Id": "x", "Age": 7, "Active": True}
    assert records["y"].attributes == {"Id": "y", "Age": 3, "Active": False}
    assert records["z"].attributes == {"Id": "z"}


async def test_invalid_values_are_logged_and_left_out(
    make: Factory, typed_schema: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    connector = await make(schema_file=typed_schema)
    _write_csv(
        tmp_path / "users.csv",
        [["Id", "Name", "Age", "Active"], ["a", "Ann", "abc", "yes"], ["", "Nobody", "1", ""]],
    )

    with caplog.at_level(logging.WARNING, logger="ecmahost.connectors.csv.connector"):
        records = await _records(connector)

    assert records == {"a": Record("a", {"Id": "a", "Name": "Ann"})}
    messages = [r.getMessage() for r in caplog.records]
    assert any("line 2" in m and "Age" in m and "'abc'" in m for m in messages)
    assert any("line 2" in m and "Active" in m and "'yes'" in m for m in messages)
    assert any("line 3" in m and "anchor skipped" in m for m in messages)
    assert {r.action for r in caplog.records} == {  # type: ignore[attr-defined]
        "csv.import.invalid_value",
        "csv.import.no_anchor",
    }


# -- idempotency -----------------------------------------------------------------


async def test_retried_add_leaves_one_row(make: Factory, tmp_path: Path) -> None:
    connector = await make()

    await connector.export([_add("a", DisplayName="first")])
    await connector.export([_add("a", DisplayName="retried")])

    assert _file_rows(tmp_path / "users.csv")[1:] == [
        ["a", "retried", "", "", "", "", ""],
    ]


async def test_replace_of_missing_adds_and_delete_of_missing_succeeds(make: Factory) -> None:
    connector = await make()

    results = await connector.export([_replace("a", Title="boss"), _delete("nobody")])

    assert [r.ok for r in results] == [True, True]
    assert (await _records(connector))["a"].attributes == {"AzureObjectID": "a", "Title": "boss"}


async def test_delete_removes_the_row(make: Factory, tmp_path: Path) -> None:
    connector = await make(seed=SAMPLES / "InputFile.txt")

    results = await connector.export([_delete("de4841f1-cb92-48e5-9056-29a36a0653c2")])

    assert results[0].ok
    assert len(await _records(connector)) == 3
    assert all("Adele" not in row[2] for row in _file_rows(tmp_path / "users.csv"))


async def test_rename_rewrites_the_row_in_place_and_retries_are_idempotent(
    make: Factory, tmp_path: Path
) -> None:
    connector = await make()
    _write_csv(
        tmp_path / "users.csv",
        [["AzureObjectID", "DisplayName"], ["a", "one"], ["b", "keep"]],
    )
    rename = Change(ChangeKind.REPLACE, "a2", {"AzureObjectID": "a2", "DisplayName": "one"}, "a")

    for _ in range(2):  # the second attempt finds the row already under its new anchor
        [result] = await connector.export([rename])
        assert result.ok
        rows = _file_rows(tmp_path / "users.csv")[1:]
        assert [row[:2] for row in rows] == [["a2", "one"], ["b", "keep"]]
    assert set(await _records(connector)) == {"a2", "b"}


async def test_duplicate_rows_of_a_changed_anchor_collapse(make: Factory, tmp_path: Path) -> None:
    connector = await make()
    _write_csv(
        tmp_path / "users.csv",
        [["AzureObjectID", "DisplayName"], ["a", "one"], ["b", "keep"], ["a", "two"], ["b", "x"]],
    )

    await connector.export([_replace("a", DisplayName="only")])

    rows = _file_rows(tmp_path / "users.csv")[1:]
    assert [row[:2] for row in rows] == [["a", "only"], ["b", "keep"], ["b", "x"]]


async def test_concurrent_exports_all_land(make: Factory) -> None:
    connector = await make()

    await asyncio.gather(
        *(connector.export([_add(f"id-{i}", DisplayName=str(i))]) for i in range(20)),
        connector.export([_replace("id-0", DisplayName="replaced")]),
    )

    records = await _records(connector)
    assert set(records) == {f"id-{i}" for i in range(20)}


# -- append or rewrite -----------------------------------------------------------


async def test_adds_of_new_anchors_append_in_place(make: Factory, tmp_path: Path) -> None:
    connector = await make(seed=SAMPLES / "InputFile.txt")
    path = tmp_path / "users.csv"
    before, inode = path.read_bytes(), path.stat().st_ino

    await connector.export([_add("n1", DisplayName="New One"), _add("n2", IsActive=True)])

    assert path.stat().st_ino == inode
    assert (
        path.read_bytes() == before + b'"n1";"";"New One";"";"";"";""\n"n2";"True";"";"";"";"";""\n'
    )


async def test_batches_of_adds_keep_appending_and_refuse_a_repeated_anchor(
    make: Factory, tmp_path: Path
) -> None:
    connector = await make(seed=SAMPLES / "InputFile.txt")
    path = tmp_path / "users.csv"
    inode = path.stat().st_ino

    for i in range(3):
        await connector.export([_add(f"n{i}", DisplayName=f"New {i}")])
    assert path.stat().st_ino == inode
    await connector.export([_add("n1", DisplayName="Again")])  # known from an append

    assert path.stat().st_ino != inode
    rows = [row for row in _file_rows(path) if row[0] == "n1"]
    assert [row[2] for row in rows] == ["Again"]


async def test_an_edit_between_batches_is_seen_before_the_next_append(
    make: Factory, tmp_path: Path
) -> None:
    connector = await make(seed=SAMPLES / "InputFile.txt")
    path = tmp_path / "users.csv"
    await connector.export([_add("n1", DisplayName="New")])
    with path.open("a", encoding="utf-8") as other_program:
        other_program.write('"hand";"";"By hand";"";"";"";""\n')

    await connector.export([_add("hand", DisplayName="From Entra")])

    rows = [row for row in _file_rows(path) if row[0] == "hand"]
    assert [row[2] for row in rows] == ["From Entra"]


async def test_a_mixed_batch_rewrites_the_file(make: Factory, tmp_path: Path) -> None:
    connector = await make(seed=SAMPLES / "InputFile.txt")
    path = tmp_path / "users.csv"
    inode = path.stat().st_ino

    await connector.export(
        [_add("n1", DisplayName="New"), _replace("ba8c90b5-176c-499d-9dbb-dd7027dd9fd3")]
    )

    assert path.stat().st_ino != inode
    records = await _records(connector)
    assert records["ba8c90b5-176c-499d-9dbb-dd7027dd9fd3"].attributes == {
        "AzureObjectID": "ba8c90b5-176c-499d-9dbb-dd7027dd9fd3"
    }
    assert records["n1"].attributes["DisplayName"] == "New"
    assert _names(tmp_path) == ["Schema.xml", "users.csv", "users.csv.lock"]


async def test_add_of_an_existing_anchor_rewrites(make: Factory, tmp_path: Path) -> None:
    connector = await make(seed=SAMPLES / "InputFile.txt")
    path = tmp_path / "users.csv"
    inode = path.stat().st_ino

    await connector.export([_add("de4841f1-cb92-48e5-9056-29a36a0653c2", DisplayName="Adele")])

    assert path.stat().st_ino != inode
    assert len(_file_rows(path)) == 5


async def test_a_file_without_final_newline_is_not_appended_to(
    make: Factory, tmp_path: Path
) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes(b'"AzureObjectID";"DisplayName"\n"a";"A"')
    connector = await make()

    await connector.export([_add("b", DisplayName="B")])

    assert path.read_bytes().startswith(b'"AzureObjectID";"DisplayName";"UserName"')
    assert [row[:2] for row in _file_rows(path)[1:]] == [["a", "A"], ["b", "B"]]


async def test_header_order_and_extra_columns_survive(make: Factory, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    header = ["Notes", "email", "AzureObjectID", "IsActive", "DisplayName", "Title", "UserName",
              "EmployeeId", "Cost centre"]  # fmt: skip
    _write_csv(
        path,
        [
            header,
            ["hand note", "a@x", "a", "false", "Ann", "", "", "", "CC1"],
            ["other", "b@x", "b", "True", "Bob", "", "", "", "CC2"],
        ],
    )
    connector = await make()

    before = await _records(connector)
    await connector.export([_replace("a", DisplayName="Anna", Email="anna@x")])

    assert before["a"].attributes == {
        "AzureObjectID": "a", "Email": "a@x", "IsActive": False, "DisplayName": "Ann"
    }  # fmt: skip
    assert _file_rows(path) == [
        header,
        ["hand note", "anna@x", "a", "", "Anna", "", "", "", "CC1"],
        ["other", "b@x", "b", "True", "Bob", "", "", "", "CC2"],
    ]


async def test_schema_attributes_missing_from_the_header_are_appended(
    make: Factory, tmp_path: Path
) -> None:
    path = tmp_path / "users.csv"
    _write_csv(path, [["AzureObjectID", "DisplayName"], ["a", "Ann"]])
    connector = await make()
    inode = path.stat().st_ino

    await connector.export([_add("b", Email="b@x")])  # new anchor, but the header must grow

    assert path.stat().st_ino != inode
    assert _file_rows(path) == [
        ["AzureObjectID", "DisplayName", "UserName", "Title", "EmployeeId", "Email", "IsActive"],
        ["a", "Ann", "", "", "", "", ""],
        ["b", "", "", "", "", "b@x", ""],
    ]


async def test_a_symlinked_file_stays_a_symlink(make: Factory, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "real.csv"
    (tmp_path / "users.csv").symlink_to(real)
    _write_csv(real, [["AzureObjectID"], ["a"]])
    connector = await make()

    await connector.export([_replace("a", Title="t")])

    assert (tmp_path / "users.csv").is_symlink()
    assert _file_rows(real)[1][:4] == ["a", "", "", "t"]
    assert _names(tmp_path / "data") == ["real.csv", "real.csv.lock"]  # the lock: by the file


async def test_validate_accepts_a_good_file(make: Factory) -> None:
    connector = await make(seed=SAMPLES / "InputFile.txt")

    await connector.validate()


async def test_bom_encoding_writes_one_bom(make: Factory, tmp_path: Path) -> None:
    connector = await make(encoding="utf-8-sig", delimiter=",")

    await connector.export([_add("a", DisplayName="Zoë, Å")])
    await connector.export([_add("b", DisplayName="second")])  # appended: no second BOM

    raw = (tmp_path / "users.csv").read_bytes()
    assert raw.startswith(b'\xef\xbb\xbf"AzureObjectID","DisplayName"')
    assert raw.count(b"\xef\xbb\xbf") == 1
    records = await _records(connector)
    assert records["a"].attributes["DisplayName"] == "Zoë, Å"
    assert set(records) == {"a", "b"}


# -- per-change and whole-batch errors -------------------------------------------


async def test_unencodable_values_fail_only_their_change(make: Factory, tmp_path: Path) -> None:
    connector = await make(encoding="latin-1")

    results = await connector.export(
        [
            _add("a", DisplayName="Zoë Ångström"),
            _add("b", DisplayName="日本"),
            _add("c", DisplayName="plain"),
            _add("d", Title="\ud800"),
        ]
    )

    assert [r.ok for r in results] == [True, False, True, False]
    assert isinstance(results[1].error, PermanentError)
    assert "'DisplayName'" in str(results[1].error)
    assert "'b'" in str(results[1].error)
    # The file by name only: the message reaches Entra, the folder is nobody's business.
    assert str(results[1].error).startswith("users.csv: ")
    assert str(tmp_path) not in str(results[1].error)
    assert isinstance(results[1].error.__cause__.__cause__, UnicodeEncodeError)
    records = await _records(connector)
    assert set(records) == {"a", "c"}
    assert records["a"].attributes["DisplayName"] == "Zoë Ångström"
    assert _file_rows(tmp_path / "users.csv", "latin-1")[1][1] == "Zoë Ångström"


async def test_surrogates_fail_their_change_in_utf8(make: Factory) -> None:
    connector = await make()

    results = await connector.export([_add("a", Title="\udcff"), _add("b", Title="fine")])

    assert isinstance(results[0].error, PermanentError)
    assert results[1].ok
    assert set(await _records(connector)) == {"b"}


@pytest.mark.parametrize(
    "change, problem",
    [
        (_add("a", Shoe="42"), "attribute 'Shoe' is not in the schema"),
        (_add("a", IsActive="maybe"), "not a Boolean"),
        (_add("", DisplayName="x"), "the anchor is empty"),
        (_add("a", AzureObjectID="b"), "not the change's anchor"),
        (_add("a", Title="x" * (csv.field_size_limit() + 1)), "would not read back"),
    ],
)
async def test_unwritable_changes_are_permanent_errors(
    make: Factory, change: Change, problem: str
) -> None:
    connector = await make()

    results = await connector.export([change, _add("ok")])

    assert isinstance(results[0].error, PermanentError)
    assert problem in str(results[0].error)
    assert results[1].ok
    assert set(await _records(connector)) == {"ok"}


async def test_failed_rename_keeps_the_file_and_leaves_no_temp(
    make: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = await make(seed=SAMPLES / "InputFile.txt")
    path = tmp_path / "users.csv"
    before = path.read_bytes()

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(errno.EIO, "Input/output error", str(dst))

    # No real fault makes rename(2) fail at will, so this one is injected.
    monkeypatch.setattr(os, "replace", broken_replace)

    with pytest.raises(TransientError, match=str(path)) as caught:
        await connector.export([_delete("de4841f1-cb92-48e5-9056-29a36a0653c2")])

    assert isinstance(caught.value.__cause__, OSError)
    assert path.read_bytes() == before
    assert _names(tmp_path) == ["Schema.xml", "users.csv", "users.csv.lock"]


async def test_failed_append_leaves_no_partial_row(
    make: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = await make(seed=SAMPLES / "InputFile.txt")
    path = tmp_path / "users.csv"
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    # A full disk cannot be produced on demand in a test; fsync reports it instead.
    monkeypatch.setattr(os, "fsync", disk_full)

    with pytest.raises(TransientError, match="No space left on device"):
        await connector.export([_add("n1", DisplayName="New")])

    assert path.read_bytes() == before


async def test_a_vanished_folder_is_transient(make: Factory, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    connector = await make(path="data/users.csv")
    shutil.rmtree(folder)

    with pytest.raises(TransientError, match=str(folder / "users.csv")):
        await connector.export([_replace("a")])
    with pytest.raises(TransientError, match=str(folder / "users.csv")):
        await _records(connector)


async def test_a_folder_in_place_of_the_file_is_transient(make: Factory, tmp_path: Path) -> None:
    (tmp_path / "users.csv").mkdir()
    connector = await make()

    with pytest.raises(TransientError, match="cannot read"):
        await _records(connector)


async def test_a_header_without_the_anchor_is_refused(make: Factory, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    _write_csv(path, [["DisplayName"], ["Ann"]])
    connector = await make()

    with pytest.raises(PermanentError, match="no column for the anchor 'AzureObjectID'"):
        await connector.validate()
    with pytest.raises(PermanentError, match=str(path)):
        await _records(connector)
    with pytest.raises(PermanentError, match=str(path)):
        await connector.export([_replace("a")])
    assert _file_rows(path) == [["DisplayName"], ["Ann"]]


async def test_undecodable_bytes_cost_one_value_and_are_kept(
    make: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes(
        b'"AzureObjectID";"DisplayName";"Title"\n"a";"Zo\xeb";"Boss"\n"b\xff";"B";""\n'
    )
    connector = await make()

    with caplog.at_level(logging.WARNING, logger="ecmahost.connectors.csv.connector"):
        records = await _records(connector)
    await connector.export([_add("c", DisplayName="C")])  # a rewrite: the header grows

    assert records == {"a": Record("a", {"AzureObjectID": "a", "Title": "Boss"})}
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "line 2" in m and "DisplayName is not valid utf-8: b'Zo\\xeb'" in m for m in messages
    )
    assert any("line 3" in m and "anchor" in m for m in messages)
    raw = path.read_bytes()
    assert b'"a";"Zo\xeb";"Boss";' in raw
    assert b'"b\xff";"B";"";' in raw


# -- between processes -----------------------------------------------------------


@contextmanager
def _held_elsewhere(path: Path) -> Iterator[None]:
    """The file's lock taken through a descriptor of our own, as another process holds
    it (``flock`` locks belong to an open file, not to a process)."""
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


async def test_a_batch_waits_for_another_processs_hold_of_the_files_lock(
    make: Factory, tmp_path: Path
) -> None:
    connector = await make()
    path = tmp_path / "users.csv"
    before = path.read_bytes()
    with _held_elsewhere(path):
        export = asyncio.create_task(connector.export([_add("new", DisplayName="N")]))
        await asyncio.sleep(0.3)
        assert not export.done() and path.read_bytes() == before
    [result] = await export
    assert result.ok and "new" in await _records(connector)


async def test_a_hold_of_the_files_lock_past_the_timeout_is_transient(
    make: Factory, tmp_path: Path
) -> None:
    connector = await make(lock_timeout_s=0.2)
    path = tmp_path / "users.csv"
    before = path.read_bytes()
    with _held_elsewhere(path), pytest.raises(TransientError) as caught:
        await connector.export([_add("new", DisplayName="N")])
    assert "users.csv.lock" in str(caught.value) and "0.2 s" in str(caught.value)
    assert path.read_bytes() == before
    [result] = await connector.export([_add("new", DisplayName="N")])  # the retry
    assert result.ok


# -- streaming -------------------------------------------------------------------


async def test_an_import_reads_the_file_as_it_was_when_it_began(
    make: Factory, tmp_path: Path
) -> None:
    rows = [["AzureObjectID", "DisplayName"], *([f"id-{i}", "x" * 40] for i in range(3000))]
    _write_csv(tmp_path / "users.csv", rows)
    small = _write_schema(
        tmp_path / "Small.xml", ("AzureObjectID", "String"), ("DisplayName", "String")
    )
    connector = await make(schema_file=small)
    inode = (tmp_path / "users.csv").stat().st_ino
    imported = connector.full_import()

    first = await anext(imported)
    await connector.export([_add("late", DisplayName="appended meanwhile")])
    rest = [record.anchor async for record in imported]

    assert (tmp_path / "users.csv").stat().st_ino == inode  # it was an append
    assert [first.anchor, *rest] == [f"id-{i}" for i in range(3000)]
    assert "late" in await _records(connector)


@pytest.mark.slow
async def test_full_import_streams(make: Factory, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    row = ["", "True", "Person Name", "E123456", "A rather long job title", "user@example.com"]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(SAMPLE_HEADER[:6])
        writer.writerows([f"{i:08d}-anchor-{i:08d}", *row[1:]] for i in range(200_000))
    size = path.stat().st_size
    connector = await make()

    tracemalloc.start()
    try:
        count = 0
        async for record in connector.full_import():
            count += 1
            assert record.attributes["IsActive"] is True
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 200_000
    assert size > 20_000_000
    # Holding the rows would take several times the file's size; a chunk of 1,000
    # rows is well under a megabyte. The bound leaves room for allocator noise.
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte file"
