"""SCIM discovery documents (RFC 7643 §5-7), generated from a connector's schema."""

from __future__ import annotations

from typing import Any, Final

from ecmahost.connectors.base import Attribute, DataType, Schema
from ecmahost.engine.scim.resource import CORE_USER, EXTENSION

__all__ = [
    "LIST_RESPONSE",
    "MAX_PAGE_SIZE",
    "list_response",
    "resource_types",
    "schemas",
    "service_provider_config",
]

LIST_RESPONSE: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
MAX_PAGE_SIZE: Final = 1000

_SCIM_TYPES = {DataType.STRING: "string", DataType.INTEGER: "integer", DataType.BOOLEAN: "boolean"}


def list_response(resources: list[dict[str, Any]], total: int, start_index: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "Resources": resources,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
    }


def _attribute(
    name: str, scim_type: str, *, required: bool = False, uniqueness: str = "none"
) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "name": name,
        "type": scim_type,
        "multiValued": False,
        "description": name,
        "required": required,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": uniqueness,
    }
    if scim_type == "string":
        attribute["caseExact"] = False
    return attribute


def _connector_attribute(attribute: Attribute) -> dict[str, Any]:
    described = _attribute(
        attribute.name,
        _SCIM_TYPES[attribute.data_type],
        required=attribute.is_anchor,
        uniqueness="server" if attribute.is_anchor else "none",
    )
    described["multiValued"] = attribute.multi_valued
    if not attribute.exported:
        described["mutability"] = "readOnly"
    elif not attribute.imported:
        described |= {"mutability": "writeOnly", "returned": "never"}
    return described


def schemas(schema: Schema, base_url: str) -> list[dict[str, Any]]:
    """The core User schema (the parts served) and the connector's extension."""
    core = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": CORE_USER,
        "name": "User",
        "description": "User account",
        "attributes": [
            _attribute("userName", "string", required=True, uniqueness="server"),
            _attribute("active", "boolean"),
        ],
        "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{CORE_USER}"},
    }
    extension = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": EXTENSION,
        "name": schema.object_type,
        "description": f"{schema.object_type} attributes of the connector",
        "attributes": [_connector_attribute(a) for a in schema.attributes],
        "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{EXTENSION}"},
    }
    return [core, extension]


def resource_types(base_url: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User account",
            "schema": CORE_USER,
            "schemaExtensions": [{"schema": EXTENSION, "required": True}],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/User"},
        }
    ]


def service_provider_config(base_url: str, max_results: int = MAX_PAGE_SIZE) -> dict[str, Any]:
    """What this service really supports, and nothing more."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The connector's secret token in an Authorization: Bearer header",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }
