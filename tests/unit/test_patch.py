"""SCIM PATCH in every shape Entra sends (tests/…/REQUESTS.md), over the demo schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ecmahost.connectors.csv.schema_xml import parse_schema_xml
from ecmahost.engine.config import Deprovision, DisableAction
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.scim.patch import apply_patch
from ecmahost.engine.scim.resource import ResourceMapper

from tests.conftest import DEMO_CONFIG_DIR, EXT

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

MAPPER = ResourceMapper(
    parse_schema_xml(DEMO_CONFIG_DIR / "Schema.xml"),
    Deprovision(disable=DisableAction.SET_ATTRIBUTE, disable_attribute="IsActive"),
)

ADELE: dict[str, Any] = {
    "AzureObjectID": "de4841f1-cb92-48e5-9056-29a36a0653c2",
    "UserName": "AdeleV@contoso.OnMicrosoft.com",
    "DisplayName": "Adele Vance",
    "Title": "Retail Manager",
    "Email": "AdeleV@contoso.OnMicrosoft.com",
    "IsActive": True,
}


def patch(*operations: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    return apply_patch(
        MAPPER, ADELE if current is None else current, {"Operations": list(operations)}
    )


def test_default_dialect_capitalised_ops_urn_paths_string_booleans() -> None:
    body = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Replace", "path": f"{EXT}:Title", "value": "Store Manager"},
            {"op": "Replace", "path": f"{EXT}:IsActive", "value": "False"},
        ],
    }

    assert apply_patch(MAPPER, ADELE, body) == {
        **ADELE,
        "Title": "Store Manager",
        "IsActive": False,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("False", False),
        (False, False),
        ("false", False),
        ("True", True),
        (True, True),
        ("true", True),
    ],
)
def test_active_reaches_the_disable_attribute(value: Any, expected: bool) -> None:
    current = {**ADELE, "IsActive": not expected}

    after = patch({"op": "Replace", "path": "active", "value": value}, current=current)

    assert after == {**ADELE, "IsActive": expected}


def test_add_of_a_core_attribute_the_target_lacks_is_ignored() -> None:
    assert patch({"op": "Add", "path": "nickName", "value": "Babs"}) == ADELE


def test_aad_opt_flag_dialect_with_a_pathless_value_of_attribute_paths() -> None:
    body = {
        "Operations": [
            {"op": "replace", "path": "active", "value": False},
            {
                "op": "replace",
                "value": {"displayName": "Bjfe", f"{EXT}:Title": "Aklq"},
            },
        ]
    }

    assert apply_patch(MAPPER, ADELE, body) == {
        **ADELE,
        "IsActive": False,
        "DisplayName": "Bjfe",
        "Title": "Aklq",
    }


def test_a_pathless_value_may_carry_active() -> None:
    after = patch({"op": "replace", "value": {"active": "false", "title": "Gone"}})

    assert after == {**ADELE, "IsActive": False, "Title": "Gone"}


def test_active_is_ignored_without_a_disable_attribute() -> None:
    mapper = ResourceMapper(MAPPER.schema, Deprovision())
    body = {"Operations": [{"op": "replace", "path": "active", "value": False}]}

    assert apply_patch(mapper, ADELE, body) == ADELE


def test_rfc_nested_extension_object_without_a_path() -> None:
    after = patch({"op": "replace", "value": {EXT: {"Title": "x", "EmployeeId": "42"}}})

    assert after == {**ADELE, "Title": "x", "EmployeeId": "42"}


def test_operations_apply_in_order() -> None:
    after = patch(
        {"op": "Replace", "path": f"{EXT}:Title", "value": "first"},
        {"op": "Remove", "path": f"{EXT}:Email"},
        {"op": "Add", "path": f"{EXT}:Email", "value": "new@contoso.com"},
        {"op": "Replace", "path": f"{EXT}:Title", "value": "second"},
        {"op": "replace", "path": "active", "value": "False"},
        {"op": "replace", "path": "active", "value": "True"},
    )

    assert after == {**ADELE, "Title": "second", "Email": "new@contoso.com", "IsActive": True}


@pytest.mark.parametrize("path", [f"{EXT}:Title", "title", f"{EXT.lower()}:TITLE"])
def test_remove_makes_the_attribute_absent(path: str) -> None:
    after = patch({"op": "remove", "path": path})

    assert "Title" not in after
    assert after == {k: v for k, v in ADELE.items() if k != "Title"}


@pytest.mark.parametrize("value", [None, ""])
def test_null_means_absent(value: Any) -> None:
    after = patch(
        {"op": "replace", "path": f"{EXT}:Title", "value": value},
        {"op": "replace", "value": {EXT: {"Email": value}}},
    )

    assert after == {k: v for k, v in ADELE.items() if k not in ("Title", "Email")}


def test_core_user_name_reaches_the_user_name_attribute() -> None:
    after = patch({"op": "replace", "path": "userName", "value": "adele@fabrikam.com"})

    assert after == {**ADELE, "UserName": "adele@fabrikam.com"}


def test_a_pathless_value_skips_schemas_meta_and_id() -> None:
    after = patch(
        {"op": "replace", "value": {"schemas": [EXT], "meta": {}, "id": "x", "Title": "t"}}
    )

    assert after == {**ADELE, "Title": "t"}


def test_field_names_are_case_insensitive() -> None:
    body = {"operations": [{"OP": "REPLACE", "Path": f"{EXT}:Title", "Value": "T"}]}

    assert apply_patch(MAPPER, ADELE, body) == {**ADELE, "Title": "T"}


def test_the_result_is_a_new_mapping() -> None:
    current = dict(ADELE)

    after = patch({"op": "replace", "path": f"{EXT}:Title", "value": "T"}, current=current)

    assert current == ADELE
    assert after is not current


GOOD = {"op": "Replace", "path": f"{EXT}:Title", "value": "applied?"}


def then(operation: Any) -> dict[str, Any]:
    """A body whose first operation is fine and whose second is ``operation``."""
    return {"Operations": [GOOD, operation]}


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        (then({"op": "move", "path": "title", "value": "x"}), "invalidSyntax"),
        (then({"path": "title", "value": "x"}), "invalidSyntax"),
        (then("replace"), "invalidSyntax"),
        ({"Operations": {"op": "replace", "path": "title", "value": "x"}}, "invalidSyntax"),
        ({"Operations": []}, "invalidSyntax"),
        ({"schemas": [PATCH_OP]}, "invalidSyntax"),
        ([GOOD], "invalidSyntax"),
        (then({"op": "replace", "path": f"{EXT}:Nope", "value": "x"}), "invalidPath"),
        (then({"op": "replace", "value": {f"{EXT}:Nope": "x"}}), "invalidPath"),
        (then({"op": "replace", "value": {EXT: {"Nope": "x"}}}), "invalidPath"),
        (then({"op": "replace", "path": "urn:x:y:Title", "value": "x"}), "invalidPath"),
        (then({"op": "replace", "path": 7, "value": "x"}), "invalidPath"),
        (then({"op": "replace", "path": "active", "value": "maybe"}), "invalidValue"),
        (then({"op": "replace", "path": "active", "value": 1}), "invalidValue"),
        (then({"op": "replace", "path": "title", "value": ["a", "b"]}), "invalidValue"),
        (then({"op": "replace", "value": "Title"}), "invalidValue"),
        (then({"op": "remove"}), "noTarget"),
        (then({"op": "Remove", "path": ""}), "noTarget"),
    ],
)
def test_a_bad_request_is_refused_and_nothing_is_applied(body: Any, scim_type: str) -> None:
    current = dict(ADELE)
    before = copy.deepcopy(current)

    with pytest.raises(ScimError) as info:
        apply_patch(MAPPER, current, body)

    assert (info.value.status, info.value.scim_type) == (400, scim_type)
    assert current == before
