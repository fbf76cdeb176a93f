"""The provisioning rules for an anchor the target assigns: a create needs none, and
a client never changes the bound one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ecmahost.connectors.base import Attribute, Capability, Schema, Value
from ecmahost.engine.config import ConnectorConfig
from ecmahost.engine.exceptions import AnchorRequiredError
from ecmahost.engine.provisioning import Rules, create_anchor, stage_write
from ecmahost.engine.space.stored import StoredObject

CONFIG = ConnectorConfig.model_validate({"name": "Mem", "type": "memory", "token": "x" * 20})


def schema(*, assigned: bool) -> Schema:
    return Schema("Person", (Attribute("-dn-", is_anchor=True, assigned=assigned), Attribute("cn")))


def rules(*, assigned: bool = True, capable: bool = True) -> Rules:
    capabilities = {Capability.EXPORT} | ({Capability.ASSIGNS_ANCHOR} if capable else set())
    return Rules.of(CONFIG, schema(assigned=assigned), capabilities)


def bound(**attributes: Value) -> StoredObject:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    values: dict[str, Value] = {"-dn-": "cn=a,ou=p", "cn": "a", **attributes}
    return StoredObject("id-a", "Mem", "cn=a,ou=p", values, True, 2, moment, moment)


def test_server_assigned_anchor_a_create_needs_none() -> None:
    assert create_anchor(rules(), {"cn": "a"}) is None
    staged = stage_write(rules(), None, {"cn": "a"})
    assert (staged.anchor, dict(staged.attributes)) == (None, {"cn": "a"})


@pytest.mark.parametrize(("assigned", "capable"), [(False, True), (True, False)])
def test_server_assigned_anchor_needs_the_schema_and_the_capability(
    assigned: bool, capable: bool
) -> None:
    with pytest.raises(AnchorRequiredError):
        create_anchor(rules(assigned=assigned, capable=capable), {"cn": "a"})


def test_server_assigned_anchor_a_write_without_it_keeps_the_bound_value() -> None:
    staged = stage_write(rules(), bound(), {"cn": "b"})
    assert staged.anchor is None  # never a rename: the target moves it, and says so
    assert dict(staged.attributes) == {"cn": "b", "-dn-": "cn=a,ou=p"}


def test_server_assigned_anchor_a_value_sent_is_passed_on_as_a_request() -> None:
    staged = stage_write(rules(), bound(), {"cn": "b", "-dn-": "cn=b,ou=q"})
    assert staged.anchor is None  # bound only to what the target answers
    assert dict(staged.attributes) == {"cn": "b", "-dn-": "cn=b,ou=q"}
