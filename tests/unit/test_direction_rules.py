"""Attribute flow direction and the deprovisioning options ``delete = "none"`` and an
inverted disable flag, in the provisioning rules and the SCIM resource mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ecmahost.connectors.base import Attribute, Capability, DataType, Direction, Schema, Value
from ecmahost.engine.config import ConnectorConfig, DeleteAction, Deprovision, DisableAction
from ecmahost.engine.provisioning import Rules, stage_delete, stage_write
from ecmahost.engine.queue.claims import coalesce
from ecmahost.engine.scim.discovery import schemas
from ecmahost.engine.scim.resource import CORE_USER, EXTENSION, ResourceMapper
from ecmahost.engine.space.records import DueObject, QueuedEvent
from ecmahost.engine.space.states import Op
from ecmahost.engine.space.stored import StoredObject

SCHEMA = Schema(
    "Person",
    (
        Attribute("AccountName", is_anchor=True),
        Attribute("Title"),
        Attribute("Created", direction=Direction.IMPORT_ONLY),
        Attribute("Password", direction=Direction.EXPORT_ONLY),
        Attribute("Disabled", DataType.BOOLEAN),
    ),
)
INVERTED = Deprovision(
    disable=DisableAction.SET_ATTRIBUTE,
    disable_attribute="Disabled",
    delete=DeleteAction.DISABLE,
    disabled_value=True,
)


def rules_of(deprovision: Deprovision = INVERTED) -> Rules:
    config = ConnectorConfig(
        name="Mem", type="memory", token="t" * 16, deprovision=deprovision.model_dump()
    )
    return Rules.of(config, SCHEMA, {Capability.EXPORT})


def stored(**attributes: Value) -> StoredObject:
    values: dict[str, Value] = {"AccountName": "a1", "Title": "Clerk", **attributes}
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return StoredObject("id-a1", "Mem", "a1", values, True, 3, moment, moment, None)


# -- direction ------------------------------------------------------------------------


def test_rules_read_directions_from_the_schema() -> None:
    rules = rules_of()
    assert rules.import_only == {"Created"}
    assert rules.export_only == {"Password"}


def test_an_export_only_value_is_exported_and_never_kept() -> None:
    staging = stage_write(rules_of(), None, {"AccountName": "a1", "Password": "s3cret!"})
    assert staging.exported == {"AccountName": "a1", "Password": "s3cret!"}
    assert "Password" not in staging.attributes


def test_an_import_only_value_is_kept_as_the_target_had_it_and_never_exported() -> None:
    before = stored(Created="20260101000000Z")
    # A PUT without it, or with another value: the stored copy keeps the target's value.
    for written in ({}, {"Created": "forged"}):
        after = {"AccountName": "a1", "Title": "Boss", **written}
        staging = stage_write(rules_of(), before, after)
        assert staging.attributes["Created"] == "20260101000000Z"
        assert staging.exported == {"AccountName": "a1", "Title": "Boss"}


def test_a_mapper_ignores_writes_to_import_only_attributes() -> None:
    mapper = ResourceMapper(SCHEMA, INVERTED)
    attributes = mapper.attributes_from(
        {"userName": "a1", EXTENSION: {"AccountName": "a1", "Created": "x", "Title": "T"}}
    )
    assert attributes == {"AccountName": "a1", "Title": "T"}


def test_export_only_attributes_are_never_rendered_and_say_so_in_the_schema() -> None:
    mapper = ResourceMapper(SCHEMA, INVERTED)
    # Even if a value reached the stored copy, SCIM answers never show it.
    rendered = mapper.render(stored(Password="leak", Created="c"), "https://h/Users/id-a1")
    assert "Password" not in rendered[EXTENSION]
    assert rendered[EXTENSION]["Created"] == "c"
    (_, extension) = schemas(SCHEMA, "https://h")
    described = {a["name"]: a for a in extension["attributes"]}
    assert described["Password"]["mutability"] == "writeOnly"
    assert described["Password"]["returned"] == "never"
    assert described["Created"]["mutability"] == "readOnly"


# -- deprovisioning -------------------------------------------------------------------


def test_delete_none_forgets_the_object_and_exports_nothing() -> None:
    rules = rules_of(Deprovision(delete=DeleteAction.NONE))
    staging = stage_delete(rules, stored())
    assert (staging.visible, staging.export) == (False, None)


@pytest.mark.parametrize(
    ("path", "value", "disabled"),
    [
        ("active", False, True),
        ("active", "False", True),
        ("active", True, False),
        (f"{CORE_USER}:active", False, True),
        (f"{EXTENSION}:Disabled", True, True),  # the attribute itself, as it is
        (f"{EXTENSION}:Disabled", False, False),
    ],
)
def test_an_inverted_flag_holds_true_while_disabled(
    path: str, value: object, disabled: bool
) -> None:
    mapper = ResourceMapper(SCHEMA, INVERTED)
    attributes: dict[str, Value] = {"AccountName": "a1"}
    mapper.assign(attributes, path, value)
    assert attributes["Disabled"] is disabled
    assert mapper.is_active(attributes) is not disabled


def test_an_inverted_flag_is_rendered_as_active() -> None:
    mapper = ResourceMapper(SCHEMA, INVERTED)
    assert mapper.render(stored(Disabled=True), "l")["active"] is False
    assert mapper.render(stored(Disabled=False), "l")["active"] is True


def test_an_inverted_flag_exports_a_disable_and_a_delete_as_true() -> None:
    rules = rules_of()
    disable = stage_write(rules, stored(Disabled=False), {"AccountName": "a1", "Disabled": True})
    assert (disable.visible, disable.export) == (True, "upsert")
    deleted = stage_delete(rules, stored(Disabled=False))
    assert deleted.visible is False
    assert deleted.attributes["Disabled"] is True


def test_an_inverted_flag_kept_store_only_exports_the_target_value() -> None:
    rules = rules_of(INVERTED.model_copy(update={"disable": DisableAction.NONE}))
    staging = stage_write(
        rules, stored(Disabled=False), {"AccountName": "a1", "Title": "X", "Disabled": True}
    )
    assert staging.attributes["Disabled"] is True
    assert staging.exported == {"AccountName": "a1", "Title": "X", "Disabled": False}


# -- coalescing queued events -----------------------------------------------------------


def _event(event_id: int, op: Op, **payload: Value) -> QueuedEvent:
    return QueuedEvent(event_id, "Mem", "id-a1", "a1", op, payload, 0)


def test_an_export_only_value_survives_coalescing_with_a_later_write() -> None:
    """Queued: a create with the initial password, then a title change without it."""
    due = DueObject(
        "id-a1",
        (
            _event(1, Op.UPSERT, AccountName="a1", Password="s3cret!"),
            _event(2, Op.UPSERT, AccountName="a1", Title="Boss"),
        ),
        None,
    )
    change = coalesce(due, frozenset({"Password"})).change
    assert change.attributes == {"AccountName": "a1", "Title": "Boss", "Password": "s3cret!"}
    # Other attributes are the newest state's: a value removed stays removed.
    assert coalesce(due).change.attributes == {"AccountName": "a1", "Title": "Boss"}


def test_an_export_only_value_before_a_delete_is_not_carried() -> None:
    due = DueObject(
        "id-a1",
        (
            _event(1, Op.UPSERT, AccountName="a1", Password="old"),
            _event(2, Op.DELETE),
            _event(3, Op.UPSERT, AccountName="a1"),
        ),
        None,
    )
    assert coalesce(due, frozenset({"Password"})).change.attributes == {"AccountName": "a1"}
