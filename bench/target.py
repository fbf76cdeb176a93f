"""The benchmarks' target: the demo CSV connector (config/Schema.xml) over a generated
file of users ``0 .. n``, with the host configuration every benchmark uses.

User ``i`` is the same everywhere (anchor, names, the CSV row), so a benchmark can
name a user by its number in the file, in SCIM requests and in checks.
"""

from __future__ import annotations

import csv
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONNECTOR = "CSV"
EXT = "urn:ietf:params:scim:schemas:extension:ECMA2Host:2.0:User"
TOKEN = "bench-token-" + uuid.uuid4().hex
TOKEN_VARIABLE = "ECMAHOST_BENCH_TOKEN"
COLUMNS = ["AzureObjectID", "IsActive", "DisplayName", "EmployeeId", "Title", "UserName", "Email"]
"""The demo Schema.xml's attributes, in the order of Microsoft's sample file."""
CSV_FORMAT: dict[str, Any] = {
    "delimiter": ";",
    "quoting": csv.QUOTE_ALL,
    "lineterminator": "\n",
}
"""The CSV connector's file format (every field quoted, ``;``, ``\\n``)."""

CONFIG = f"""[host]
tls = "off"
state_dir = "state"
log_level = "warning"
synchronous = "FULL"
max_page_size = 1000

[connectors.{CONNECTOR}]
type = "csv"
token = "env:{TOKEN_VARIABLE}"
autosync_minutes = 0
export_mode = "sync"

[connectors.{CONNECTOR}.deprovision]
disable = "set_attribute"
disable_attribute = "IsActive"

[connectors.{CONNECTOR}.settings]
schema_file = "Schema.xml"
path = "InputFile.txt"
"""


def anchor(i: int) -> str:
    """User ``i``'s anchor: a UUID that sorts like ``i`` and reads as a bench user."""
    return str(uuid.UUID(int=(0xBE0C << 112) + i))


def user_name(i: int) -> str:
    return f"user{i}@contoso.example"


def user(i: int) -> dict[str, Any]:
    """User ``i`` as SCIM extension attributes (the body of a create)."""
    return {
        "AzureObjectID": anchor(i),
        "IsActive": True,
        "DisplayName": f"User {i}",
        "EmployeeId": f"E{i:07d}",
        "Title": "Engineer",
        "UserName": user_name(i),
        "Email": user_name(i),
    }


def csv_row(i: int) -> list[str]:
    """User ``i`` as the CSV file holds it, in ``COLUMNS`` order."""
    values = user(i)
    return [_cell(values[column]) for column in COLUMNS]


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def write_csv(path: Path, users: Iterable[int]) -> None:
    """The target file with a header and one row per user number, streamed: a
    million rows never sit in memory at once."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, **CSV_FORMAT)
        writer.writerow(COLUMNS)
        writer.writerows(csv_row(i) for i in users)


def read_csv(path: Path) -> Iterator[dict[str, str]]:
    """The data rows of a target file by column name: the connector keeps the
    file's column order, whatever it is."""
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle, **CSV_FORMAT)


def write_target(folder: Path, users: int) -> Path:
    """``folder`` made a host configuration over users ``0 .. users``; returns the
    configuration file. The target file is ``InputFile.txt`` next to it."""
    shutil.copy(REPO / "config" / "Schema.xml", folder / "Schema.xml")
    write_csv(folder / "InputFile.txt", range(users))
    config = folder / "ecmahost.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return config
