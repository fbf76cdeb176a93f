"""A delimited text file read and written by header name, typed by a schema.

Columns are found by header name, so a hand-edited file with reordered or extra columns
keeps working and keeps its extra data. Values are text in the file and typed values
in records: booleans as ``True``/``False``, integers in plain decimal.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ecmahost.connectors.base import Attribute, DataType, Direction, Record, Schema, Value
from ecmahost.connectors.exceptions import PermanentError

__all__ = ["KEEP_BYTES", "Cursor", "Layout", "Table", "read_back", "to_text"]

KEEP_BYTES = "surrogateescape"
"""The codec error handler to read and write the file with.

Bytes that are not valid in the file's encoding are read as surrogates, so one bad
byte costs one value rather than the whole import, and a rewrite puts the very same
bytes back."""

_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what KEEP_BYTES reads a bad byte as
_INTEGER = re.compile(r"[+-]?[0-9]+")  # int() alone would also take "1_000" and " 7 "


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each schema attribute lives in the file's rows."""

    header: tuple[str, ...]
    """The file's header, then the schema attributes it lacked."""
    columns: tuple[tuple[Attribute, int], ...]
    anchor_column: int
    complete: bool
    """Whether the file's header already had every schema attribute."""

    @classmethod
    def of(cls, file_header: Sequence[str], schema: Schema) -> Layout:
        found: dict[str, int] = {}
        for index, name in enumerate(file_header):
            attribute = schema.get(name.strip())
            if attribute is not None:
                found.setdefault(attribute.name, index)  # a duplicate column is extra data
        missing = [a.name for a in schema.attributes if a.name not in found]
        found.update({name: len(file_header) + i for i, name in enumerate(missing)})
        columns = tuple((a, found[a.name]) for a in schema.attributes)
        header = (*file_header, *missing)
        return cls(header, columns, found[schema.anchor.name], not missing)

    def anchor_of(self, cells: Sequence[str]) -> str:
        return _cell(cells, self.anchor_column)

    def fit(self, cells: Sequence[str]) -> list[str]:
        """``cells`` padded to the header's width; cells beyond it are kept."""
        return [*cells, *[""] * (len(self.header) - len(cells))]

    def fill(self, values: Mapping[str, str], old: Sequence[str] = ()) -> list[str]:
        """A row holding ``values`` (absent ones empty), keeping ``old``'s other columns
        and, for an attribute that flows one way only, its cell when ``values`` lacks it."""
        cells = self.fit(old)
        for attribute, column in self.columns:
            if attribute.name in values or attribute.direction is Direction.IMPORT_EXPORT:
                cells[column] = values.get(attribute.name, "")
        return cells


class Table:
    """A CSV file being read: the layout its header gives, then its data rows.

    Given a ``log`` (a full import), data rows are read strictly and a row whose
    quoting is broken (a quote left open runs into the next rows) costs only its
    first line, with a warning naming it; without one (a rewrite), it is an error.
    """

    def __init__(
        self,
        stream: IO[str],
        schema: Schema,
        csv_format: Mapping[str, Any],
        path: Path,
        log: logging.Logger | None = None,
    ) -> None:
        self._lines = _Lines(stream)
        self._format = csv_format
        self._reader = csv.reader(self._lines, **csv_format)
        self._path = path
        self._log: logging.Logger | None = None  # the header's quoting is never forgiven
        first = next(self.rows(), None)
        if log is not None:  # the reader has read the header's lines and no more
            self._format = {**csv_format, "strict": True}
            self._reader = csv.reader(self._lines, **self._format)
            self._log = log
        file_header = first[1] if first else []
        self.layout = Layout.of(file_header, schema)
        if file_header and self.layout.anchor_column >= len(file_header):
            raise PermanentError(
                f"{path}: the header row has no column for the anchor {schema.anchor.name!r} "
                f"({_delimiter_hint(file_header, csv_format['delimiter'])})"
            )

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """The remaining non-blank rows, each with the line it starts on."""
        while True:
            line = self._lines.start_row()
            try:
                cells = next(self._reader, None)
            except csv.Error as exc:
                if self._log is None:
                    raise PermanentError(f"{self._path} line {line}: {exc}") from exc
                self._skip_first_line(line, exc)
                continue
            if cells is None:
                return
            if cells:
                yield line, cells

    def _skip_first_line(self, line: int, exc: csv.Error) -> None:
        """Give back all but the row's first line and read on from the next one."""
        assert self._log is not None
        self._lines.give_back_all_but_first()
        self._reader = csv.reader(self._lines, **self._format)
        self._log.warning(
            "%s line %d: unterminated or misplaced quote (%s); line %d skipped",
            self._path,
            line,
            exc,
            line,
            extra={"action": "csv.import.bad_quote", "line": line},
        )


class _Lines:
    """The stream's lines as the csv reader takes them, counted, with the lines of
    the row being read kept so a broken row can be read again from its second line.
    They are few: the csv module refuses a field longer than its field size limit."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = iter(stream)
        self._given_back: list[str] = []
        self._row: list[str] = []
        self.number = 0
        """Lines handed out so far."""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._given_back.pop() if self._given_back else next(self._stream)
        self.number += 1
        self._row.append(line)
        return line

    def start_row(self) -> int:
        """Begin a row; the number of the line it starts on."""
        self._row.clear()
        return self.number + 1

    def give_back_all_but_first(self) -> None:
        rest = self._row[1:]
        self._given_back.extend(reversed(rest))
        self.number -= len(rest)
        self._row.clear()


def _delimiter_hint(header: Sequence[str], delimiter: str) -> str:
    """What a header without the anchor was split on, and what it seems to use."""
    looked = f"looked for columns separated by {delimiter!r}"
    text = delimiter.join(header)
    counts = {d: text.count(d) for d in ",;\t|" if d != delimiter}
    seems = max(counts, key=lambda d: counts[d])
    if counts[seems] == 0:
        return looked
    return f"{looked}; the header seems to use {seems!r}"


class Cursor:
    """A full import under way: the file snapshot being read, chunk by chunk.

    Rows it cannot use are skipped, and values it cannot read left out, with a
    warning on ``log``.
    """

    def __init__(
        self, stream: io.TextIOWrapper, table: Table, path: Path, log: logging.Logger
    ) -> None:
        self._stream = stream
        self._layout = table.layout
        self._imported = tuple(
            (attribute, column, attribute.data_type is DataType.STRING)
            for attribute, column in table.layout.columns
            if attribute.imported
        )
        """(attribute, column, whether its text is its value) of what imports read."""
        self._rows = table.rows()
        self._path = path
        self._log = log

    def next_chunk(self, max_records: int) -> list[Record]:
        """Up to ``max_records`` records; empty at the end of the file."""
        records: list[Record] = []
        for line, cells in self._rows:
            record = self._record(line, cells)
            if record is not None:
                records.append(record)
            if len(records) >= max_records:
                break
        return records

    def close(self) -> None:
        self._stream.close()

    def _record(self, line: int, cells: Sequence[str]) -> Record | None:
        anchor = self._layout.anchor_of(cells)
        if not anchor or _UNDECODABLE.search(anchor):
            self._warn("csv.import.no_anchor", line, "row without a readable anchor skipped")
            return None
        attributes: dict[str, Value] = {}
        # One search of the whole row instead of one per cell: most rows decode cleanly,
        # and a text value of such a row is its cell as it is.
        clean = _UNDECODABLE.search("".join(cells)) is None
        width = len(cells)
        for attribute, column, is_text in self._imported:
            text = cells[column] if column < width else ""
            if not text:
                continue
            value = text if clean and is_text else self._value(line, attribute, text)
            if value is not None:
                attributes[attribute.name] = value
        # The engine finds a repeated anchor (it already holds every anchor) and names
        # the line from here, so the stream keeps no set of anchors of its own.
        return Record(anchor, attributes, f"{self._path} line {line}")

    def _value(self, line: int, attribute: Attribute, text: str) -> Value | None:
        if _UNDECODABLE.search(text):
            encoding = self._stream.encoding
            raw = text.encode(encoding, KEEP_BYTES)
            message = f"attribute {attribute.name} is not valid {encoding}: {raw!r}; left out"
            self._warn("csv.import.undecodable", line, message)
            return None
        try:
            return _from_text(text, attribute.data_type)
        except ValueError:
            kind = attribute.data_type.value
            message = f"attribute {attribute.name} has invalid {kind} value {text!r}; left out"
            self._warn("csv.import.invalid_value", line, message)
            return None

    def _warn(self, action: str, line: int, message: str) -> None:
        self._log.warning(
            "%s line %d: %s", self._path, line, message, extra={"action": action, "line": line}
        )


def read_back(text: str, csv_format: Mapping[str, Any]) -> str | None:
    """``text`` written as a one-cell row and read again; None if it is not one cell."""
    out = io.StringIO(newline="")
    csv.writer(out, **csv_format).writerow([text])
    try:
        rows = list(csv.reader(io.StringIO(out.getvalue(), newline=""), **csv_format))
    except csv.Error:  # longer than csv.field_size_limit(), for one
        return None
    return rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else None


def to_text(value: Value, data_type: DataType) -> str:
    """A value as the file's text; ValueError when it is not of ``data_type``."""
    if data_type is DataType.BOOLEAN:
        flag = value if isinstance(value, bool) else _from_text(str(value), data_type)
        return "True" if flag else "False"
    if data_type is DataType.INTEGER:
        number = value if type(value) is int else _from_text(str(value), data_type)
        return str(number)
    return ("True" if value else "False") if isinstance(value, bool) else str(value)


def _from_text(text: str, data_type: DataType) -> Value:
    """The typed value of a field; ValueError when it is not one."""
    if data_type is DataType.BOOLEAN:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"not a Boolean: {text!r}")
        return lowered == "true"
    if data_type is DataType.INTEGER:
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"not an Integer: {text!r}")
        return int(text)
    return text


def _cell(cells: Sequence[str], column: int) -> str:
    return cells[column] if column < len(cells) else ""
