"""An object's derived id is the UUID 5 of its connector and anchor, however computed."""

from __future__ import annotations

import uuid

import pytest
from ecmahost.engine.space.records import _ID_NAMESPACE, object_id_for


@pytest.mark.parametrize(
    "anchor",
    ["be0c0000-0000-0000-0000-000000000001", "", "Adèle Vance", "ǅ日本\U0001f600", "a\x00b"],
)
def test_object_id_is_the_uuid5_of_connector_and_anchor(anchor: str) -> None:
    expected = str(uuid.uuid5(_ID_NAMESPACE, f"CSV\x00{anchor}"))
    assert object_id_for("CSV", anchor) == expected
