"""The provisioning rules without HTTP: what a write or a delete stages and exports
under each deprovisioning choice, the anchor rule, and what an export's outcome
means for a sync-mode write."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from ecmahost.connectors.base import Attribute, Capability, DataType, Schema, Value
from ecmahost.engine.config import ConnectorConfig, DeleteAction, DisableAction
from ecmahost.engine.exceptions import (
    AnchorImmutableError,
    AnchorRequiredError,
    DomainError,
    ExportUnconfirmedError,
    TargetConflictError,
    TargetRefusedError,
    TargetRejectedError,
    TargetTimeoutError,
    TargetUnavailableError,
)
from ecmahost.engine.provisioning import (
    OUTCOME_RECHECK_S,
    Rules,
    check_outcome,
    confirm_export,
    stage_delete,
    stage_write,
)
from ecmahost.engine.queue import Outcome
from ecmahost.engine.queue.notifier import Notifier
from ecmahost.engine.space.store import Staging
from ecmahost.engine.space.stored import StoredObject

NONE, DELETE, SET = DisableAction.NONE, DisableAction.DELETE, DisableAction.SET_ATTRIBUTE
ABSENT = None
"""``before_active`` when the object has no disable attribute at all (counts as active)."""


def rules(
    disable: DisableAction = SET,
    delete: DeleteAction = DeleteAction.DELETE,
    *,
    can_rename: bool = False,
    flag: str | None = "IsActive",
) -> Rules:
    return Rules("Mem", "AccountName", flag, disable, delete, can_rename)


def stored(active: bool | None = True, **attributes: Value) -> StoredObject:
    values: dict[str, Value] = {"AccountName": "a1", "Title": "Clerk", **attributes}
    if active is not None:
        values["IsActive"] = active
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return StoredObject("id-a1", "Mem", "a1", values, True, 3, moment, moment, "ext-1")


def staged(staging: Staging) -> tuple[Any, ...]:
    return (staging.visible, staging.export, staging.exported, staging.anchor)


# -- writes -----------------------------------------------------------------------

UPSERT = (True, "upsert", None, None)
DELETED = (False, "delete", None, None)


def store_only(new_anchor: str | None = None, **flag: Value) -> tuple[Any, ...]:
    """A disable kept in the connector space: the rest exported, the flag as it was."""
    exported = {"AccountName": new_anchor or "a1", "Title": "Manager", **flag}
    return (True, "upsert", exported, new_anchor)


# before active, after active, disable action, renames, rename capability
# -> visible, export, exported (what the target gets when it differs), new anchor
WRITES = [
    pytest.param(True, True, NONE, False, False, UPSERT, id="stays-active"),
    pytest.param(True, True, DELETE, False, False, UPSERT, id="stays-active-delete"),
    pytest.param(False, False, DELETE, False, False, UPSERT, id="stays-off"),
    pytest.param(False, True, DELETE, False, False, UPSERT, id="enable"),
    pytest.param(False, True, NONE, False, False, UPSERT, id="enable-none"),
    pytest.param(ABSENT, False, DELETE, False, False, DELETED, id="absent-off"),
    pytest.param(True, False, NONE, False, False, store_only(IsActive=True), id="disable-none"),
    pytest.param(ABSENT, False, NONE, False, False, store_only(), id="disable-none-no-flag"),
    pytest.param(True, False, DELETE, False, False, DELETED, id="disable-delete"),
    pytest.param(True, False, SET, False, False, UPSERT, id="disable-set"),
    pytest.param(True, True, SET, True, True, (True, "upsert", None, "a2"), id="rename"),
    pytest.param(True, False, DELETE, True, True, (False, "delete", None, "a2"), id="rename-off"),
    pytest.param(True, False, NONE, True, True, store_only("a2", IsActive=True), id="rename-none"),
    pytest.param(True, True, SET, False, True, UPSERT, id="can-rename-but-does-not"),
]


@pytest.mark.parametrize(
    ("before_active", "after_active", "disable", "renames", "can_rename", "expected"), WRITES
)
def test_a_write_is_staged_as_the_deprovisioning_rules_say(
    before_active: bool | None,
    after_active: bool,
    disable: DisableAction,
    renames: bool,
    can_rename: bool,
    expected: tuple[Any, ...],
) -> None:
    after: dict[str, Value] = {
        "AccountName": "a2" if renames else "a1",
        "Title": "Manager",
        "IsActive": after_active,
    }

    # The delete action plays no part in a write.
    for delete in DeleteAction:
        staging = stage_write(
            rules(disable, delete, can_rename=can_rename), stored(before_active), dict(after), "x"
        )

        assert staged(staging) == expected
        assert staging.attributes == after
        assert staging.external_id == "x"


def test_a_store_only_disable_with_nothing_else_exports_nothing() -> None:
    before = stored(True)

    staging = stage_write(rules(NONE), before, {**before.attributes, "IsActive": False})

    assert staged(staging) == (True, None, None, None)
    assert staging.attributes["IsActive"] is False


@pytest.mark.parametrize("active", [True, False])
@pytest.mark.parametrize("disable", list(DisableAction))
def test_a_create_is_an_upsert_even_of_an_inactive_user(
    disable: DisableAction, active: bool
) -> None:
    attributes: dict[str, Value] = {"AccountName": "n1", "IsActive": active}

    staging = stage_write(rules(disable), None, attributes, "ext-9")

    assert staging == Staging(attributes, True, "upsert", external_id="ext-9")


def test_without_a_disable_attribute_nothing_is_a_disable() -> None:
    after: dict[str, Value] = {"AccountName": "a1", "IsActive": False}

    staging = stage_write(rules(DELETE, flag=None), stored(True), after)

    assert staged(staging) == (True, "upsert", None, None)


def test_only_a_disable_is_logged_with_its_action(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ecmahost.engine.provisioning")

    stage_write(rules(DELETE), stored(True), {"AccountName": "a1", "IsActive": True})
    assert caplog.records == []
    stage_write(rules(DELETE), stored(True), {"AccountName": "a1", "IsActive": False})

    [record] = caplog.records
    assert record.getMessage() == "disable: delete"
    assert (record.__dict__["action"], record.__dict__["connector"]) == (
        "deprovision.delete",
        "Mem",
    )


# -- the anchor rule ----------------------------------------------------------------


@pytest.mark.parametrize("anchor", [None, ""], ids=["absent", "empty"])
def test_a_create_needs_the_anchor(anchor: str | None) -> None:
    attributes: dict[str, Value] = {"Title": "Clerk"}
    if anchor is not None:
        attributes["AccountName"] = anchor

    with pytest.raises(AnchorRequiredError) as caught:
        stage_write(rules(), None, attributes)

    assert caught.value.attribute == "AccountName"
    assert str(caught.value) == "the anchor attribute AccountName is required"


@pytest.mark.parametrize("can_rename", [True, False])
def test_a_write_cannot_remove_the_anchor(can_rename: bool) -> None:
    with pytest.raises(AnchorImmutableError) as caught:
        stage_write(rules(can_rename=can_rename), stored(), {"Title": "Manager"})

    assert (caught.value.attribute, caught.value.removed) == ("AccountName", True)
    assert str(caught.value) == "the anchor attribute AccountName cannot be removed"


def test_a_rename_needs_the_capability() -> None:
    with pytest.raises(AnchorImmutableError) as caught:
        stage_write(rules(can_rename=False), stored(), {"AccountName": "a2"})

    assert (caught.value.attribute, caught.value.removed) == ("AccountName", False)
    assert str(caught.value) == "the anchor attribute AccountName cannot change"


def test_the_anchor_rule_comes_before_any_disable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ecmahost.engine.provisioning")

    with pytest.raises(AnchorImmutableError):
        stage_write(rules(DELETE), stored(True), {"AccountName": "a2", "IsActive": False})

    assert caplog.records == []


# -- deletes ------------------------------------------------------------------------

OFF = {"AccountName": "a1", "Title": "Clerk", "IsActive": False}

# before active, delete action, disable action, disable attribute configured
# -> attributes, export, exported
DELETES = [
    pytest.param(True, DeleteAction.DELETE, SET, True, "before", "delete", id="delete"),
    pytest.param(True, DeleteAction.DELETE, NONE, True, "before", "delete", id="delete-none"),
    pytest.param(True, DeleteAction.DISABLE, SET, True, OFF, "upsert", id="disable-set"),
    pytest.param(True, DeleteAction.DISABLE, NONE, True, OFF, None, id="disable-none"),
    pytest.param(True, DeleteAction.DISABLE, DELETE, True, OFF, "delete", id="disable-delete"),
    pytest.param(False, DeleteAction.DISABLE, SET, True, OFF, "upsert", id="already-off"),
    pytest.param(True, DeleteAction.DISABLE, SET, False, "before", "delete", id="no-flag"),
]


@pytest.mark.parametrize(
    ("before_active", "delete", "disable", "has_flag", "attributes", "export"), DELETES
)
def test_a_delete_hides_the_object_and_exports_as_the_rules_say(
    before_active: bool,
    delete: DeleteAction,
    disable: DisableAction,
    has_flag: bool,
    attributes: dict[str, Value] | str,
    export: str | None,
) -> None:
    before = stored(before_active)
    flag = "IsActive" if has_flag else None

    staging = stage_delete(rules(disable, delete, can_rename=True, flag=flag), before)

    wanted = before.attributes if attributes == "before" else attributes
    assert staging == Staging(wanted, visible=False, export=export, external_id="ext-1")


# -- the connector's rules ----------------------------------------------------------


@pytest.mark.parametrize("capabilities", [{Capability.EXPORT}, set(Capability)])
def test_the_rules_come_from_the_configuration_schema_and_capabilities(
    capabilities: set[Capability],
) -> None:
    config = ConnectorConfig.model_validate(
        {
            "name": "Mem",
            "type": "memory",
            "token": "t" * 32,
            "deprovision": {
                "disable": "delete",
                "disable_attribute": "isactive",
                "delete": "disable",
            },
        }
    )
    schema = Schema(
        "User",
        (Attribute("AccountName", is_anchor=True), Attribute("IsActive", DataType.BOOLEAN)),
    )

    found = Rules.of(config, schema, capabilities)

    assert found == Rules(
        "Mem",
        "AccountName",
        "IsActive",  # the schema's spelling
        DisableAction.DELETE,
        DeleteAction.DISABLE,
        Capability.RENAME in capabilities,
    )
    assert found.is_active({"IsActive": True}) and found.is_active({})
    assert not found.is_active({"IsActive": False})


# -- export outcomes ----------------------------------------------------------------

# outcome -> the domain error (or None), its message, the group the caller acts on
OUTCOMES = [
    pytest.param(Outcome("done"), None, None, None, id="done"),
    pytest.param(
        None,
        TargetTimeoutError,
        "the target did not confirm the change within 2.5 s; it stays queued and will be exported",
        ExportUnconfirmedError,
        id="timeout",
    ),
    pytest.param(
        Outcome("retrying", "down", "transient"),
        TargetUnavailableError,
        "the target is unavailable: down; it stays queued and will be retried",
        ExportUnconfirmedError,
        id="retrying",
    ),
    pytest.param(
        Outcome("failed", "down (gave up after 8 attempts)", "transient"),
        TargetUnavailableError,
        "the target is unavailable: down (gave up after 8 attempts);",
        ExportUnconfirmedError,
        id="gave-up",
    ),
    pytest.param(
        Outcome("failed", "UserName is taken", "conflict"),
        TargetConflictError,
        "UserName is taken",
        TargetRefusedError,
        id="conflict",
    ),
    pytest.param(
        Outcome("failed", None, "conflict"),
        TargetConflictError,
        "conflict in the target",
        TargetRefusedError,
        id="conflict-unexplained",
    ),
    pytest.param(
        Outcome("failed", "bad title", "permanent"),
        TargetRejectedError,
        "bad title",
        TargetRefusedError,
        id="rejected",
    ),
    pytest.param(
        Outcome("discarded", None, None),
        TargetRejectedError,
        "the target rejected the change",
        TargetRefusedError,
        id="discarded",
    ),
]


@pytest.mark.parametrize(("outcome", "error", "message", "group"), OUTCOMES)
def test_an_outcome_is_a_domain_result(
    outcome: Outcome | None,
    error: type[DomainError] | None,
    message: str | None,
    group: type[DomainError] | None,
) -> None:
    if error is None:
        check_outcome(outcome, 2.5)
        return
    assert group is not None
    with pytest.raises(error) as caught:
        check_outcome(outcome, 2.5)
    assert str(caught.value) == message
    assert isinstance(caught.value, group)


async def test_confirm_export_returns_once_the_outcome_is_published() -> None:
    outcomes: Notifier[int, Outcome] = Notifier()
    asked: list[int] = []

    async def recorded(event_id: int) -> Outcome | None:
        asked.append(event_id)
        return None

    waiting = asyncio.create_task(confirm_export(outcomes, recorded, 41, 5.0))
    while outcomes.waiting(41) == 0 or not asked:
        await asyncio.sleep(0)
    outcomes.publish(41, Outcome("done"))

    await waiting
    assert asked == [41]


async def test_confirm_export_uses_an_outcome_recorded_before_it_waited() -> None:
    async def recorded(event_id: int) -> Outcome | None:
        return Outcome("failed", f"event {event_id} refused", "conflict")

    with pytest.raises(TargetConflictError, match="event 41 refused"):
        await confirm_export(Notifier(), recorded, 41, 5.0)


async def test_confirm_export_finds_an_outcome_recorded_without_a_publish() -> None:
    """Another host recorded it and was killed before telling: a second's wait, not
    the whole of ``export_wait_s``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    asked: list[float] = []

    async def recorded(event_id: int) -> Outcome | None:
        asked.append(loop.time() - started)
        return Outcome("done") if len(asked) > 1 else None

    await confirm_export(Notifier(), recorded, 41, 30.0)
    assert len(asked) == 2
    assert OUTCOME_RECHECK_S * 0.9 <= asked[1] < OUTCOME_RECHECK_S + 1.0


async def test_confirm_export_gives_up_after_the_wait() -> None:
    async def recorded(event_id: int) -> Outcome | None:
        return None

    with pytest.raises(TargetTimeoutError) as caught:
        await confirm_export(Notifier(), recorded, 41, 0.02)

    assert caught.value.wait_s == 0.02
