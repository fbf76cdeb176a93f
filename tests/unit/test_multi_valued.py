"""Multi-valued attributes in the SCIM layer: request arrays become sets, PATCH adds
to and removes from them, a single-valued attribute takes an array of one only, and
the value index holds a row per value."""

from __future__ import annotations

from typing import Any

import pytest
from ecmahost.connectors.base import Attribute, DataType, Schema
from ecmahost.engine.config import Deprovision, DisableAction
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.scim.patch import apply_patch
from ecmahost.engine.scim.resource import ResourceMapper
from ecmahost.engine.space.index import index_rows

from tests.conftest import EXT

SCHEMA = Schema(
    "Person",
    (
        Attribute("uid", is_anchor=True),
        Attribute("Title"),
        Attribute("LoginCount", DataType.INTEGER),
        Attribute("mail", multi_valued=True),
        Attribute("objectClass", multi_valued=True),
        Attribute("token", case_exact=True, multi_valued=True),
    ),
)
MAPPER = ResourceMapper(SCHEMA, Deprovision(disable=DisableAction.DELETE))
ADELE: dict[str, Any] = {"uid": "adele", "mail": ["a@example.org", "b@example.org"]}


def attributes(**extension: Any) -> dict[str, Any]:
    return MAPPER.attributes_from({EXT: {"uid": "adele", **extension}})


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return apply_patch(MAPPER, ADELE, {"Operations": list(operations)})


@pytest.mark.parametrize(
    ("sent", "held"),
    [
        (["top", "person", "inetOrgPerson"], ["inetOrgPerson", "person", "top"]),
        (["b", "a", "B", "a", None, ""], ["a", "b"]),  # a set: no order, no duplicates
        ("one", ["one"]),  # one value is a set of one
        ([{"value": "x", "primary": True}, {"value": "y"}], ["x", "y"]),  # SCIM's form
        ([7, True], ["7", "True"]),
    ],
)
def test_multi_valued_array_is_held_as_a_set(sent: Any, held: list[str]) -> None:
    assert attributes(objectClass=sent)["objectClass"] == held


@pytest.mark.parametrize("sent", [[], None, "", [None, ""]])
def test_multi_valued_empty_array_is_absent(sent: Any) -> None:
    assert "mail" not in attributes(mail=sent)


def test_multi_valued_case_exact_set_keeps_values_differing_in_case() -> None:
    assert attributes(token=["a", "A"])["token"] == ["A", "a"]


def test_multi_valued_single_valued_takes_an_array_of_one() -> None:
    held = attributes(Title=["Engineer"], LoginCount=[3], uid=["adele"])
    assert (held["Title"], held["LoginCount"], held["uid"]) == ("Engineer", 3, "adele")
    assert "Title" not in attributes(Title=[])


@pytest.mark.parametrize("name", ["Title", "LoginCount", "uid"])
def test_multi_valued_several_values_for_a_single_valued_attribute_is_a_400(name: str) -> None:
    with pytest.raises(ScimError) as caught:
        attributes(**{name: ["1", "2"]})
    assert caught.value.status == 400
    assert name in caught.value.detail


def test_multi_valued_item_that_is_no_value_is_a_400() -> None:
    with pytest.raises(ScimError) as caught:
        attributes(mail=[["nested"]])
    assert "mail" in caught.value.detail


def test_multi_valued_patch_add_adds_to_the_set() -> None:
    added = patch({"op": "add", "path": f"{EXT}:mail", "value": ["c@example.org", "A@example.org"]})
    assert added["mail"] == ["a@example.org", "b@example.org", "c@example.org"]
    pathless = patch({"op": "Add", "value": {EXT: {"mail": "d@example.org"}}})
    assert pathless["mail"] == ["a@example.org", "b@example.org", "d@example.org"]


def test_multi_valued_patch_replace_sets_the_whole_set() -> None:
    replaced = patch({"op": "replace", "path": "mail", "value": ["z@example.org"]})
    assert replaced["mail"] == ["z@example.org"]
    pathless = patch({"op": "Replace", "value": {EXT: {"mail": ["y@example.org"]}}})
    assert pathless["mail"] == ["y@example.org"]


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "remove", "path": f'{EXT}:mail[value eq "A@example.org"]'},
        {"op": "remove", "path": 'mail[value eq "a@example.org"]'},
        {"op": "remove", "path": "mail", "value": ["a@example.org"]},
        {"op": "remove", "path": "mail", "value": [{"value": "a@example.org"}]},
    ],
)
def test_multi_valued_patch_remove_takes_the_named_values_out(operation: dict[str, Any]) -> None:
    assert patch(operation)["mail"] == ["b@example.org"]


def test_multi_valued_patch_remove_of_the_last_values_or_without_value_clears() -> None:
    assert "mail" not in patch({"op": "remove", "path": "mail"})
    both = {"op": "remove", "path": "mail", "value": ["a@example.org", "b@example.org"]}
    assert "mail" not in patch(both)


@pytest.mark.parametrize(
    "path", ['Title[value eq "x"]', 'mail[type eq "work"]', 'mail[value co "a"]']
)
def test_multi_valued_patch_value_filter_only_on_sets_by_value(path: str) -> None:
    with pytest.raises(ScimError) as caught:
        patch({"op": "remove", "path": path})
    assert caught.value.status == 400


@pytest.mark.parametrize("op", ["add", "replace"])
def test_multi_valued_patch_value_filter_on_add_or_replace_is_a_400(op: str) -> None:
    with pytest.raises(ScimError) as caught:
        patch({"op": op, "path": 'mail[value eq "a@example.org"]', "value": "z@example.org"})
    assert caught.value.status == 400


def test_multi_valued_index_has_a_row_per_value() -> None:
    rows = index_rows("id1", "LDAP", {"uid": "adele", "mail": ["A@x.org", "b@x.org"]})
    assert sorted((r["attr"], r["value"]) for r in rows) == [
        ("mail", "a@x.org"),
        ("mail", "b@x.org"),
        ("uid", "adele"),
    ]
