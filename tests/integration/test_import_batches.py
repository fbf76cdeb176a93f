"""A full import over many batches: each written while the next is read, in order,
with the value index following every change of a value."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ecmahost.connectors.base import Record
from ecmahost.connectors.exceptions import TransientError
from ecmahost.connectors.memory.connector import MemoryConnector
from ecmahost.engine.workers import importer as importer_module
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.importer import Importer

from tests.integration.scim_search import search
from tests.integration.test_space import NAME, Space, person, space

__all__ = ["space"]

USERS = 11
BATCH = 3


class _FailingAfter(MemoryConnector):
    """A target whose read breaks after ``after`` records."""

    after = 7

    async def full_import(self) -> AsyncIterator[Record]:
        read = 0
        async for record in super().full_import():
            if read == self.after:
                raise TransientError("the target went away")
            read += 1
            yield record


class _Crashing(MemoryConnector):
    """A target whose reader has a bug: it raises what no connector may."""

    async def full_import(self) -> AsyncIterator[Record]:
        async for record in super().full_import():
            yield record
        raise RuntimeError("a bug in the reader")


async def _titles(space: Space, title: str) -> list[str]:
    """The anchors of the users whose title the value index holds as ``title``."""
    schema = await space.target.schema()
    _, found = await search(space.space, NAME, schema, f'Title eq "{title}"')
    return sorted(o.anchor for o in found)


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer_module, "BATCH_SIZE", BATCH)


async def test_every_batch_is_written_and_counted_in_order(space: Space) -> None:
    space.target.objects = {f"u{i:02d}": person(f"u{i:02d}", Title="Old") for i in range(USERS)}
    seen: list[int] = []

    report = await space.importer.full_import(seen.append)

    assert report.ok and report.seen == USERS and report.counts["added"] == USERS
    assert seen == sorted(seen) and seen[-1] == USERS
    assert len(await space.visible()) == USERS
    assert await _titles(space, "Old") == sorted(space.target.objects)


async def test_a_changed_value_is_found_by_its_new_value_only(space: Space) -> None:
    space.target.objects = {f"u{i:02d}": person(f"u{i:02d}", Title="Old") for i in range(USERS)}
    await space.importer.full_import()
    changed = {"u01", "u05", "u10"}  # in the first, second and last batch
    for anchor in changed:
        space.target.objects[anchor] = person(anchor, Title="New")

    report = await space.importer.full_import()

    assert report.counts["updated"] == len(changed)
    assert await _titles(space, "New") == sorted(changed)
    assert await _titles(space, "Old") == sorted(set(space.target.objects) - changed)


async def test_a_read_that_breaks_keeps_the_batches_written_before(
    space: Space, tmp_path: Path
) -> None:
    target = _FailingAfter(NAME, space.target.settings, tmp_path)
    target.objects = {f"u{i:02d}": person(f"u{i:02d}") for i in range(USERS)}
    importer = Importer(NAME, target, space.space, RunGate())

    report = await importer.full_import()

    assert not report.ok and "went away" in (report.error or "")
    assert report.counts["added"] == 6  # two whole batches were read before the break
    assert len(await space.visible()) == 6


async def test_a_crashed_import_is_recorded_as_failed(space: Space, tmp_path: Path) -> None:
    """Not left running: the last import shown is the crashed one, named by the
    exception's type (the log has the rest)."""
    target = _Crashing(NAME, space.target.settings, tmp_path)
    target.objects = {f"u{i:02d}": person(f"u{i:02d}") for i in range(USERS)}
    importer = Importer(NAME, target, space.space, RunGate())

    with pytest.raises(RuntimeError):
        await importer.full_import()

    last = await space.space.last_import(NAME)
    assert last is not None
    assert (last.status, last.error) == ("failed", "crashed: RuntimeError")
    assert len(await space.visible()) == last.counts["added"] > 0  # the batches written
