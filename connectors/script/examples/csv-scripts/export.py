"""Export script: apply a batch of changes to the delimited file, atomically.

Reads every change of the batch, rewrites the whole file once (a new file next to it,
flushed to disk, then renamed over it: a crash leaves the old file or the new one,
never half of one), then prints one result per change. Columns are found by header
name, so reordered or extra columns are kept. Changes are idempotent: an add of an
existing anchor replaces its row, a replace of a missing one adds it, a delete of a
missing one succeeds, and a rename (a replace with a previous_anchor) finds its row
under either anchor.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from csvtarget import KEEP_BYTES, Target, columns, emit, fail, read_header

Wanted = dict[str, dict[str, str] | None]
"""Per changed anchor, its row's new values, or None to delete the row."""


def text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def main() -> None:
    header = read_header()
    target = Target(header["parameters"])
    changes = [json.loads(line) for line in sys.stdin if line.strip()]
    rows = target.rows()
    layout = Layout.of(rows[0] if rows else [], header)
    wanted: Wanted = {}
    renamed: dict[str, str] = {}  # previous anchor: new anchor
    results: list[dict[str, Any]] = []
    for change in changes:
        anchor = change["anchor"]
        problem = _unwritable(change, target.encoding)
        if problem:
            results.append(_error(anchor, problem))
            continue
        values = {name: text(value) for name, value in change["attributes"].items()}
        wanted[anchor] = None if change["op"] == "delete" else values
        if change.get("previous_anchor"):
            renamed[change["previous_anchor"]] = anchor
        results.append({"anchor": anchor, "status": "success"})
    if wanted:
        _rewrite(target, layout, rows[1:], wanted, renamed)
    for result in results:
        emit(result)


class Layout:
    """The header to write and where each schema attribute goes in a row."""

    def __init__(self, header: list[str], found: dict[str, int], anchor_column: int) -> None:
        self.header = header
        self.found = found
        self.anchor_column = anchor_column

    @classmethod
    def of(cls, file_header: list[str], header: dict[str, Any]) -> Layout:
        """The file's header, then the schema attributes it lacks as new columns."""
        found = columns(file_header, header["attributes"])
        missing = [a["name"] for a in header["attributes"] if a["name"] not in found]
        found.update({name: len(file_header) + i for i, name in enumerate(missing)})
        return cls([*file_header, *missing], found, found[header["anchor"]])

    def fill(self, values: dict[str, str], old: list[str]) -> list[str]:
        """A row with ``values`` (absent ones empty) and ``old``'s other columns."""
        cells = self.fit(old)
        for name, column in self.found.items():
            cells[column] = values.get(name, "")
        return cells

    def fit(self, cells: list[str]) -> list[str]:
        return [*cells, *[""] * (len(self.header) - len(cells))]


def _rewrite(
    target: Target, layout: Layout, rows: list[list[str]], wanted: Wanted, renamed: dict[str, str]
) -> None:
    """Write the changed table next to the file, make it durable, rename it over the file."""
    path = target.path.resolve()  # a symlink's target is replaced, not the link
    temporary = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    try:
        with open(temporary, "x", encoding=target.encoding, errors=KEEP_BYTES, newline="") as out:
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))  # keep the old mode
            csv.writer(out, **target.format).writerows(_changed(layout, rows, wanted, renamed))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        fail(f"cannot write {path}: {exc}")
    _fsync_folder(path.parent)


def _changed(
    layout: Layout, rows: list[list[str]], wanted: Wanted, renamed: dict[str, str]
) -> Iterator[list[str]]:
    """The header, the rows with ``wanted`` applied in place, then the new rows. A
    renamed object keeps its place; a row already under its new anchor (left by an
    earlier attempt of the same rename) is collapsed into it."""
    yield layout.header
    done: set[str] = set()
    for cells in rows:
        found = cells[layout.anchor_column] if layout.anchor_column < len(cells) else ""
        anchor = found if found in wanted else renamed.get(found)
        if anchor is None:
            yield layout.fit(cells)
        elif anchor not in done:  # later copies of a changed row are dropped
            done.add(anchor)
            values = wanted[anchor]
            if values is not None:
                yield layout.fill(values, cells)
    for anchor, values in wanted.items():
        if values is not None and anchor not in done:
            yield layout.fill(values, [])


def _unwritable(change: dict[str, Any], encoding: str) -> str | None:
    """Why the change cannot be stored faithfully, or None."""
    for name, value in [("the anchor", change["anchor"]), *change["attributes"].items()]:
        try:
            text(value).encode(encoding, KEEP_BYTES)
        except UnicodeEncodeError as exc:
            bad = text(value)[exc.start : exc.end]
            return f"{name}: {bad!r} cannot be written in {encoding}"
    return None


def _error(anchor: str, message: str) -> dict[str, Any]:
    return {"anchor": anchor, "status": "error", "retry": False, "message": message}


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX; Windows cannot open a folder for that)."""
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


if __name__ == "__main__":
    main()
