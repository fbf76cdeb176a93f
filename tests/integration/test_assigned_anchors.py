"""Anchors the target assigns, over a real space (SQLite and PostgreSQL) and the
export worker: a create goes out without an anchor, the target's answer binds the
SCIM id to the one it chose, changes queued before that reach the same object, and an
import that saw the new object first leaves no duplicate."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from ecmahost.connectors.base import (
    Attribute,
    Capability,
    Change,
    ChangeKind,
    Record,
    Result,
    Schema,
)
from ecmahost.connectors.memory.connector import MemoryConnector, MemorySettings
from ecmahost.engine.config import ConnectorConfig
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.records import is_pending
from ecmahost.engine.space.states import Op, RunKind
from ecmahost.engine.space.stored import StoredObject
from ecmahost.engine.workers.exporter import Exporter
from ecmahost.engine.workers.gate import RunGate

NAME = "Mem"
ANCHOR = "ObjectGUID"


class AssigningTarget(MemoryConnector):
    """The memory twin as a target that chooses each new object's anchor (``m-1``,
    ``m-2``, ...); holds each batch until ``answer`` is set, once ``hold`` is."""

    capabilities = frozenset({Capability.IMPORT, Capability.EXPORT, Capability.ASSIGNS_ANCHOR})

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(NAME, MemorySettings(anchor=ANCHOR), tmp_path)
        self.took = asyncio.Event()
        self.answer = asyncio.Event()
        self.hold = False
        self._assigned = 0

    async def schema(self) -> Schema:
        return Schema(
            "Person",
            (
                Attribute(ANCHOR, is_anchor=True, assigned=True),
                Attribute("UserName"),
                Attribute("Title"),
            ),
        )

    async def export(self, changes: Sequence[Change]) -> Sequence[Result]:
        self.batches.append(list(changes))
        results = [self._take(change) for change in changes]
        self.took.set()
        if self.hold:
            await self.answer.wait()
        return results

    def _take(self, change: Change) -> Result:
        if change.kind is ChangeKind.DELETE:
            self.objects.pop(change.anchor, None)
            return Result(change.anchor)
        anchor = change.anchor
        if not anchor:
            self._assigned += 1
            anchor = f"m-{self._assigned}"
        self.objects[anchor] = {**change.attributes, ANCHOR: anchor}
        return Result(anchor)


def exporter_for(target: AssigningTarget, space: ConnectorSpace) -> Exporter:
    config = ConnectorConfig.model_validate({"name": NAME, "type": "memory", "token": "x" * 20})
    return Exporter(NAME, target, space, config, RunGate())


def user(title: str) -> Staging:
    return Staging({"UserName": "avance", "Title": title}, visible=True, export=Op.UPSERT)


async def test_server_assigned_anchor_binds_the_id_and_a_change_queued_meanwhile(
    space: ConnectorSpace, tmp_path: Path
) -> None:
    target = AssigningTarget(tmp_path)
    exporter = exporter_for(target, space)
    created, _ = await space.create(NAME, None, user("first"))
    assert is_pending(created.anchor)
    assert (await space.get(NAME, created.id)) is not None  # readable before the bind

    target.hold = True
    drain = asyncio.create_task(exporter.drain_once())
    await target.took.wait()  # the create is out; the patch is queued meanwhile
    await space.update(NAME, created.id, lambda o: user("second"))
    target.answer.set()
    await drain
    target.hold = False

    bound = await space.get(NAME, created.id)
    assert bound is not None
    assert (bound.anchor, bound.attributes[ANCHOR]) == ("m-1", "m-1")
    assert await exporter.drain_once() == 1
    assert target.batches == [
        [Change(ChangeKind.ADD, "", {"UserName": "avance", "Title": "first"})],
        # Staged before the bind: found by the bound anchor, which it never carried.
        [Change(ChangeKind.REPLACE, "m-1", {"UserName": "avance", "Title": "second"})],
    ]
    assert list(target.objects) == ["m-1"]


async def test_server_assigned_anchor_import_before_the_bind_leaves_no_duplicate(
    space: ConnectorSpace, tmp_path: Path
) -> None:
    target = AssigningTarget(tmp_path)
    exporter = exporter_for(target, space)
    created, _ = await space.create(NAME, None, user("first"))

    target.hold = True
    drain = asyncio.create_task(exporter.drain_once())
    await target.took.wait()
    # An import reads the target between the add and the recording of its outcome.
    run_id = await space.begin_run(NAME, RunKind.IMPORT)
    seen = Record("m-1", {ANCHOR: "m-1", "UserName": "avance", "Title": "first"})
    await space.import_records(NAME, run_id, [seen])
    target.answer.set()
    await drain

    total, found = await space.query(NAME, None, 1, 10)
    assert total == 1
    assert [(o.id, o.anchor) for o in found] == [(created.id, "m-1")]


async def test_server_assigned_anchor_delete_before_the_create_went_out(
    space: ConnectorSpace, tmp_path: Path
) -> None:
    target = AssigningTarget(tmp_path)
    exporter = exporter_for(target, space)
    target.objects["m-9"] = {ANCHOR: "m-9", "UserName": "someone else"}
    created, _ = await space.create(NAME, None, user("first"))
    await space.update(
        NAME, created.id, lambda o: Staging(o.attributes, visible=False, export=Op.DELETE)
    )

    assert await exporter.drain_once() == 1
    assert target.batches == [[Change(ChangeKind.DELETE, "")]]  # nothing the target holds
    assert list(target.objects) == ["m-9"]
    assert await space.get(NAME, created.id) is None


class NamingTarget(AssigningTarget):
    """A target whose anchor is a name made of ``UserName`` (as an LDAP DN is made of
    the RDN attribute): a change of it moves the object to a new anchor, as does an
    anchor attribute other than the change's anchor."""

    def _take(self, change: Change) -> Result:
        if change.kind is ChangeKind.DELETE:
            return super()._take(change)
        self.objects.pop(change.anchor, None)
        asked = change.attributes.get(ANCHOR)
        anchor = f"uid={change.attributes['UserName']}"
        if change.anchor and asked and asked != change.anchor:
            anchor = str(asked)  # a move asked for, as a new LDAP -dn- is
        self.objects[anchor] = {**change.attributes, ANCHOR: anchor}
        return Result(anchor)


def named(name: str) -> Staging:
    return Staging({"UserName": name, "Title": "t"}, visible=True, export=Op.UPSERT)


async def test_dn_anchor_a_move_rebinds_the_id_and_a_change_queued_meanwhile_follows(
    space: ConnectorSpace, tmp_path: Path
) -> None:
    target = NamingTarget(tmp_path)
    exporter = exporter_for(target, space)
    created, _ = await space.create(NAME, None, named("a"))
    await exporter.drain_once()

    def rename(o: StoredObject) -> Staging:  # keeps the bound anchor, as SCIM writes do
        return Staging({**o.attributes, "UserName": "b"}, True, Op.UPSERT)

    def retitle(o: StoredObject) -> Staging:
        return Staging({**o.attributes, "Title": "late"}, True, Op.UPSERT)

    await space.update(NAME, created.id, rename)  # moves the object
    target.hold = True
    target.took.clear()  # set by the create's export
    drain = asyncio.create_task(exporter.drain_once())
    await target.took.wait()  # the move is out
    await space.update(NAME, created.id, retitle)  # staged with the old anchor
    target.answer.set()
    await drain
    target.hold = False
    await exporter.drain_once()

    bound = await space.get(NAME, created.id)
    assert bound is not None
    assert (bound.anchor, bound.attributes[ANCHOR]) == ("uid=b", "uid=b")
    assert target.batches[-1] == [
        Change(ChangeKind.REPLACE, "uid=b", {"UserName": "b", "Title": "late", ANCHOR: "uid=b"})
    ]
    assert list(target.objects) == ["uid=b"]  # not moved back
