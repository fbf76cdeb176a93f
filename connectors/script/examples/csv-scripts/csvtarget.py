"""What the CSV scripts share: the host's header line, the parameters, the file format.

It plays the part of the PowerShell sample's common module. The scripts run with
the ecmahost configuration's folder as their working directory, so a relative
FileName is relative to that folder.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

# PowerShell's -Encoding names, as ECMA2Host users write them, and Python's own names.
_POWERSHELL_ENCODINGS = {
    "": "utf-8",
    "default": "utf-8",
    "utf8": "utf-8",
    "utf8nobom": "utf-8",
    "utf8bom": "utf-8-sig",
    "unicode": "utf-16",
    "bigendianunicode": "utf-16-be",
    "utf32": "utf-32",
    "ascii": "ascii",
}

KEEP_BYTES = "surrogateescape"
"""Bytes that are not valid in the file's encoding survive a rewrite unchanged."""

# Values are data: a long one must still read back (the default limit is 128 KiB).
csv.field_size_limit(2**31 - 1)


def read_header() -> dict[str, Any]:
    """The first line on stdin: role, parameters and (for import/export) the schema."""
    sys.stdin.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    # A lone surrogate (which UTF-8 cannot carry) comes out as \udXXX: inside a JSON
    # string, that is exactly its escape.
    sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace", newline="\n")  # type: ignore[union-attr]
    line = sys.stdin.readline()
    if not line:
        fail("no header line on stdin: run me from ecmahost")
    header: dict[str, Any] = json.loads(line)
    return header


def emit(body: dict[str, Any]) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(json.dumps(body, ensure_ascii=False) + "\n")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def fail(message: str) -> None:
    """Stop with a message for the host's log (a non-zero exit fails the whole run)."""
    print(message, file=sys.stderr)
    sys.exit(1)


class Target:
    """The delimited file the parameters FileName, Delimiter and Encoding describe."""

    def __init__(self, parameters: dict[str, str]) -> None:
        name = parameters.get("FileName") or "InputFile.txt"
        self.path = Path(name)
        self.delimiter = parameters.get("Delimiter") or ";"
        if len(self.delimiter) != 1:
            fail(f"Delimiter must be one character, got {self.delimiter!r}")
        wanted = parameters.get("Encoding") or ""
        self.encoding = _POWERSHELL_ENCODINGS.get(wanted.lower().replace("-", ""), wanted)
        self.format = {
            "delimiter": self.delimiter,
            "quotechar": '"',
            "doublequote": True,
            "quoting": csv.QUOTE_ALL,
            "lineterminator": "\n",
        }

    def rows(self) -> list[list[str]]:
        """Every non-blank row, the header first."""
        if not self.path.is_file():
            fail(f"{self.path.resolve()}: file not found (check the FileName parameter)")
        with open(self.path, encoding=self.encoding, errors=KEEP_BYTES, newline="") as file:
            return [row for row in csv.reader(file, **self.format) if row]


def columns(file_header: list[str], attributes: list[dict[str, Any]]) -> dict[str, int]:
    """Where each schema attribute is in the file: matched by name, ignoring case."""
    by_name = {a["name"].lower(): a["name"] for a in attributes}
    found: dict[str, int] = {}
    for index, cell in enumerate(file_header):
        name = by_name.get(cell.strip().lower())
        if name is not None and name not in found:  # a second copy is extra data
            found[name] = index
    return found
