"""The CSV target holds personal data: a file the connector writes is its owner's only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from ecmahost.connectors.csv import atomic_file


@pytest.fixture(autouse=True)
def wide_open_umask() -> Iterator[None]:
    # The connector must not count on the host's umask.
    previous = os.umask(0)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _replace(path: Path) -> None:
    with atomic_file.replacing(path, "utf-8", "strict") as out:
        out.write('"a"\n')


def test_a_new_file_is_0600(tmp_path: Path) -> None:
    target = tmp_path / "target.csv"
    _replace(target)
    assert _mode(target) == 0o600


@pytest.mark.parametrize(
    ("before", "after"),
    [(0o644, 0o600), (0o666, 0o600), (0o640, 0o600), (0o600, 0o600), (0o400, 0o400)],
)
def test_a_rewrite_keeps_the_owner_bits_only(tmp_path: Path, before: int, after: int) -> None:
    target = tmp_path / "target.csv"
    target.write_text('"old"\n', encoding="utf-8")
    target.chmod(before)
    _replace(target)
    assert _mode(target) == after
    assert target.read_text(encoding="utf-8") == '"a"\n'
