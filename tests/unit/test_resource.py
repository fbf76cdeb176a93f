"""The SCIM User of a connector: Entra's create body in, the rendered resource out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from ecmahost.connectors.base import Attribute, Direction, Schema
from ecmahost.connectors.csv.schema_xml import parse_schema_xml
from ecmahost.engine.config import Deprovision, DisableAction
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.scim.resource import CORE_USER, ResourceMapper
from ecmahost.engine.space.store import StoredObject, object_id_for

from tests.conftest import DEMO_CONFIG_DIR, EXT

MAPPER = ResourceMapper(
    parse_schema_xml(DEMO_CONFIG_DIR / "Schema.xml"),
    Deprovision(disable=DisableAction.SET_ATTRIBUTE, disable_attribute="IsActive"),
)
ANCHOR = "de4841f1-cb92-48e5-9056-29a36a0653c2"
LOCATION = f"https://host:8585/ecma2host_CSV/scim/Users/{object_id_for('CSV', ANCHOR)}"

ENTRA_CREATE: dict[str, Any] = {
    "schemas": [CORE_USER],
    "meta": {"resourceType": "User", "created": "2020-01-01T00:00:00Z", "version": 'W/"99"'},
    EXT: {
        "AzureObjectID": ANCHOR,
        "UserName": "AdeleV@contoso.OnMicrosoft.com",
        "DisplayName": "Adele Vance",
        "Title": "Retail Manager",
        "Email": "AdeleV@contoso.OnMicrosoft.com",
        "IsActive": "True",
    },
}


def test_attributes_from_entras_create() -> None:
    assert MAPPER.attributes_from(ENTRA_CREATE) == {
        "AzureObjectID": ANCHOR,
        "UserName": "AdeleV@contoso.OnMicrosoft.com",
        "DisplayName": "Adele Vance",
        "Title": "Retail Manager",
        "Email": "AdeleV@contoso.OnMicrosoft.com",
        "IsActive": True,
    }


def test_nulls_are_absent_and_client_meta_and_id_are_ignored() -> None:
    body = {
        **ENTRA_CREATE,
        "id": "chosen-by-the-client",
        EXT: {**ENTRA_CREATE[EXT], "Title": None, "EmployeeId": None, "Email": ""},
    }

    attributes = MAPPER.attributes_from(body)

    assert set(attributes) == {"AzureObjectID", "UserName", "DisplayName", "IsActive"}
    assert None not in attributes.values()


def test_core_attributes_map_and_the_extension_wins() -> None:
    body = {
        "schemas": [CORE_USER, EXT],
        "userName": "core@contoso.com",
        "displayName": "From Core",
        "active": False,
        "nickName": "ignored: the target has no such attribute",
        EXT: {"AzureObjectID": ANCHOR, "DisplayName": "From Extension"},
    }

    assert MAPPER.attributes_from(body) == {
        "AzureObjectID": ANCHOR,
        "UserName": "core@contoso.com",
        "DisplayName": "From Extension",
        "IsActive": False,
    }


def test_the_extension_key_is_matched_case_insensitively() -> None:
    body = {EXT.lower(): {"azureobjectid": ANCHOR, "TITLE": "t"}}

    assert MAPPER.attributes_from(body) == {"AzureObjectID": ANCHOR, "Title": "t"}


@pytest.mark.parametrize(
    "body",
    [
        {"schemas": [CORE_USER], EXT: {"DisplayName": "No Anchor"}},
        {EXT: {"AzureObjectID": None, "DisplayName": "Null Anchor"}},
        {EXT: {"AzureObjectID": "", "DisplayName": "Empty Anchor"}},
        {"schemas": [CORE_USER], "displayName": "Only core"},
    ],
)
def test_a_missing_anchor_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ScimError) as info:
        MAPPER.attributes_from(body)

    assert info.value.status == 400
    assert "AzureObjectID" in info.value.detail


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ([ENTRA_CREATE], "invalidSyntax"),
        ({EXT: "not an object"}, "invalidSyntax"),
        ({EXT: {"AzureObjectID": ANCHOR, "Nope": "x"}}, "invalidPath"),
        ({EXT: {"AzureObjectID": ANCHOR, "IsActive": "yes"}}, "invalidValue"),
    ],
)
def test_a_bad_body_is_refused(body: Any, scim_type: str) -> None:
    with pytest.raises(ScimError) as info:
        MAPPER.attributes_from(body)

    assert (info.value.status, info.value.scim_type) == (400, scim_type)


def stored(attributes: dict[str, Any], version: int = 3) -> StoredObject:
    return StoredObject(
        id=object_id_for("CSV", ANCHOR),
        connector="CSV",
        anchor=ANCHOR,
        attributes=attributes,
        visible=True,
        version=version,
        created_at=datetime(2024, 5, 1, 8, 30, 0),
        updated_at=datetime(2024, 5, 2, 9, 45, 10),
    )


def walk(value: Any, where: str = "$") -> Iterator[tuple[str, Any]]:
    yield where, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{where}[{index}]")


@pytest.mark.parametrize(
    "attributes",
    [
        {"AzureObjectID": ANCHOR},
        {"AzureObjectID": ANCHOR, "IsActive": False, "Title": "t"},
        MAPPER.attributes_from(ENTRA_CREATE),
    ],
)
def test_render_has_no_nulls_anywhere(attributes: dict[str, Any]) -> None:
    resource = json.loads(json.dumps(MAPPER.render(stored(attributes), LOCATION)))

    nulls = [where for where, value in walk(resource) if value is None]
    assert nulls == []


def test_render_puts_connector_attributes_in_the_extension() -> None:
    attributes = MAPPER.attributes_from(ENTRA_CREATE)
    obj = stored(attributes)

    resource = MAPPER.render(obj, LOCATION)

    assert resource["schemas"] == [CORE_USER, EXT]
    assert resource["id"] == obj.id
    assert resource["userName"] == "AdeleV@contoso.OnMicrosoft.com"
    assert resource[EXT] == attributes


def test_render_falls_back_to_the_anchor_for_user_name() -> None:
    resource = MAPPER.render(stored({"AzureObjectID": ANCHOR}), LOCATION)

    assert resource["userName"] == ANCHOR


@pytest.mark.parametrize(
    ("attributes", "active"),
    [
        ({"AzureObjectID": ANCHOR, "IsActive": True}, True),
        ({"AzureObjectID": ANCHOR, "IsActive": False}, False),
        ({"AzureObjectID": ANCHOR}, None),  # no value: no active (a removed one stays removed)
    ],
)
def test_active_mirrors_is_active(attributes: dict[str, Any], active: bool | None) -> None:
    assert MAPPER.render(stored(attributes), LOCATION).get("active") is active


def test_no_active_without_a_disable_attribute() -> None:
    mapper = ResourceMapper(MAPPER.schema, Deprovision())

    assert "active" not in mapper.render(stored({"AzureObjectID": ANCHOR}), LOCATION)


def test_render_meta() -> None:
    meta = MAPPER.render(stored({"AzureObjectID": ANCHOR}, version=7), LOCATION)["meta"]

    assert meta == {
        "resourceType": "User",
        "created": "2024-05-01T08:30:00Z",
        "lastModified": "2024-05-02T09:45:10Z",
        "location": LOCATION,
        "version": 'W/"7"',
    }


def test_render_shows_imported_attributes_in_schema_order_and_never_a_password() -> None:
    """The attributes shown are worked out once per connector: import-only and
    import-export ones in schema order; export-only ones and any attribute named as a
    password never, even one a schema mistakenly declares readable."""
    schema = Schema(
        "User",
        (
            Attribute("Id", is_anchor=True),
            Attribute("Title"),
            Attribute("password"),
            Attribute("Export_Password"),
            Attribute("Secret", direction=Direction.EXPORT_ONLY),
            Attribute("Badge", direction=Direction.IMPORT_ONLY),
        ),
    )
    mapper = ResourceMapper(schema, Deprovision())
    everything = {
        "Badge": "7",
        "Secret": "s",
        "password": "p",
        "Export_Password": "e",
        "Title": "Lead",
        "Id": "u1",
    }
    obj = StoredObject(
        id="x",
        connector="CSV",
        anchor="u1",
        attributes=everything,
        visible=True,
        version=1,
        created_at=datetime(2024, 5, 1),
        updated_at=datetime(2024, 5, 1),
    )

    extension = mapper.render(obj, LOCATION)[EXT]

    assert list(extension.items()) == [("Id", "u1"), ("Title", "Lead"), ("Badge", "7")]
