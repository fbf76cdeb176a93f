"""Initial passwords in the queue: sealed with a key kept 0600 in the state folder,
the newest one carried by a coalesced claim, opened only for the connector, and
scrubbed from what a failed export says."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from ecmahost.connectors.base import (
    Attribute,
    Capability,
    Direction,
    Result,
    Schema,
)
from ecmahost.connectors.exceptions import ConfigError, PermanentError, TransientError
from ecmahost.engine.config import ConnectorConfig, Deprovision
from ecmahost.engine.provisioning import Rules, check_passwords, stage_write
from ecmahost.engine.queue.claims import Claim, coalesce
from ecmahost.engine.queue.opening import Opener
from ecmahost.engine.queue.sealed import KEY_FILE_NAME, SealBrokenError, Sealer, scrubbed
from ecmahost.engine.scim.resource import CORE_USER, EXTENSION, ResourceMapper
from ecmahost.engine.space.erasure import is_sealed, without_sealed
from ecmahost.engine.space.records import DueObject, QueuedEvent
from ecmahost.engine.space.states import Op

from tests.unit.test_direction_rules import stored

SCHEMA = Schema(
    "Person",
    (
        Attribute("AccountName", is_anchor=True),
        Attribute("Title"),
        Attribute("export_password", direction=Direction.EXPORT_ONLY),
    ),
)
PASSWORD = 'Zoë "pass" \\ 1234'


def _rules(sealer: Sealer) -> Rules:
    config = ConnectorConfig(name="Mem", type="memory", token="t" * 16)
    return Rules.of(config, SCHEMA, {Capability.EXPORT}, sealer)


def test_the_key_is_made_at_first_need_readable_by_the_owner_alone(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "state")
    assert not (tmp_path / "state" / KEY_FILE_NAME).exists()
    sealed = sealer.seal({"export_password": PASSWORD, "Title": "Clerk"}, ["export_password"])
    key = tmp_path / "state" / KEY_FILE_NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sealed["Title"] == "Clerk" and is_sealed(sealed["export_password"])
    text = json.dumps(sealed, ensure_ascii=False)
    assert "Zoë" not in text and "1234" not in text
    # Another process (a restarted host) reads the same key.
    assert Sealer(tmp_path / "state").unseal(sealed)["export_password"] == PASSWORD
    assert sealer.seal(sealed, ["export_password"]) == sealed  # sealed once, not twice


def test_values_keep_their_type_and_a_changed_key_refuses_to_open(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path)
    sealed = sealer.seal({"pin": 1234, "codes": ["a1", "b2"]}, ["pin", "codes"])
    assert sealer.unseal(sealed) == {"pin": 1234, "codes": ["a1", "b2"]}
    (tmp_path / KEY_FILE_NAME).unlink()
    with pytest.raises(SealBrokenError, match="cannot be opened"):
        Sealer(tmp_path).unseal(sealer.seal({"pin": 1}, ["pin"]) | sealed)


def test_a_write_queues_the_password_sealed_and_keeps_no_copy(tmp_path: Path) -> None:
    staging = stage_write(
        _rules(Sealer(tmp_path)),
        None,
        {"AccountName": "a1", "Title": "Clerk", "export_password": PASSWORD},
    )
    assert "export_password" not in staging.attributes
    assert staging.exported is not None and is_sealed(staging.exported["export_password"])
    assert without_sealed(staging.exported) == {"AccountName": "a1", "Title": "Clerk"}


def _event(number: int, op: Op, payload: dict[str, object]) -> QueuedEvent:
    return QueuedEvent(number, "Mem", "id-a1", "a1", op, payload, 0)


def test_a_coalesced_claim_carries_the_newest_password(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path)
    first, second = (sealer.seal({"export_password": p}, ["export_password"]) for p in "AB")
    carried = frozenset({"export_password"})
    events = (
        _event(1, Op.UPSERT, {"AccountName": "a1", **first}),
        _event(2, Op.UPSERT, {"AccountName": "a1", **second}),
        _event(3, Op.UPSERT, {"AccountName": "a1", "Title": "Boss"}),
    )
    claim = coalesce(DueObject("id-a1", events, None), carried)
    assert sealer.unseal(claim.change.attributes)["export_password"] == "B"
    # A delete in between: the password before it is not carried past it.
    events = (events[0], _event(2, Op.DELETE, {}), events[2])
    claim = coalesce(DueObject("id-a1", events, None), carried)
    assert "export_password" not in claim.change.attributes


def _claim(sealer: Sealer, anchor: str, password: str) -> Claim:
    payload = sealer.seal({"AccountName": anchor, "export_password": password}, ["export_password"])
    return coalesce(DueObject(f"id-{anchor}", (_event(1, Op.UPSERT, payload),), None))


def test_the_connector_gets_plain_text_and_errors_come_back_without_it(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path)
    claims = [_claim(sealer, "a1", "first-secret"), _claim(sealer, "a2", "other-secret")]
    opened = Opener(sealer, frozenset({"export_password"})).open(claims)
    changes = [c for c in opened.changes if c is not None]
    assert [c.attributes["export_password"] for c in changes] == ["first-secret", "other-secret"]
    # A batch-wide failure may quote either change's password: both are scrubbed.
    quoted = "Failing row contains (a1, first-secret) and (a2, 'other-secret')"
    results = opened.results(
        [Result("a1", PermanentError(quoted)), Result("a2", TransientError(quoted))]
    )
    assert [type(r.error) for r in results] == [PermanentError, TransientError]
    for result in results:
        assert "secret" not in str(result.error) and "***" in str(result.error)


def test_a_value_that_cannot_be_opened_fails_its_change_alone(tmp_path: Path) -> None:
    claims = [
        _claim(Sealer(tmp_path / "old"), "a1", "pw-1"),
        _claim(Sealer(tmp_path), "a2", "pw-2"),
    ]
    opened = Opener(Sealer(tmp_path), frozenset({"export_password"})).open(claims)
    assert opened.changes[0] is None and opened.changes[1] is not None
    results = opened.results([Result("a2")])
    assert isinstance(results[0].error, SealBrokenError) and results[1].ok


def test_scrubbing_covers_the_quoted_forms() -> None:
    message = f"refused {PASSWORD!r} / {json.dumps(PASSWORD)} / {PASSWORD}"
    assert "Zoë" not in scrubbed(message, [PASSWORD]) and "1234" not in scrubbed(
        message, [PASSWORD]
    )


def test_scim_password_reaches_export_password_and_is_never_rendered() -> None:
    mapper = ResourceMapper(SCHEMA, Deprovision())
    body = {"schemas": [CORE_USER], "password": PASSWORD, EXTENSION: {"AccountName": "a1"}}
    assert mapper.attributes_from(body)["export_password"] == PASSWORD
    readable = Schema("Person", (Attribute("AccountName", is_anchor=True), Attribute("Password")))
    shown = ResourceMapper(readable, Deprovision())
    rendered = shown.render(stored(Password=PASSWORD), "/Users/id-a1")
    assert PASSWORD not in json.dumps(rendered, ensure_ascii=False)


def test_an_export_opened_for_the_connector_leaves_the_claim_sealed(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path)
    claim = _claim(sealer, "a1", "pw-1")
    Opener(sealer, frozenset({"export_password"})).open([claim])
    assert is_sealed(claim.change.attributes["export_password"])


def test_an_attribute_receiving_the_password_must_be_export_only() -> None:
    config = ConnectorConfig(name="Mem", type="memory", token="t" * 16)
    check_passwords(config, SCHEMA)
    readable = Schema("Person", (Attribute("AccountName", is_anchor=True), Attribute("Password")))
    with pytest.raises(ConfigError, match="'Password' receives Entra's password"):
        check_passwords(config, readable)
