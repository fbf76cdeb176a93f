"""RFC 7644 beyond Entra's dialect: search endpoints, projections, ETags, discovery by id,
content types, and renames refused by a connector that cannot rename."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import CORE, EXT, Scim

MakeScim = Callable[..., Awaitable[Scim]]
PEOPLE = {
    "a1": {"AzureObjectID": "a1", "UserName": "ann@x.example", "Title": "Boss", "IsActive": True},
    "b2": {"AzureObjectID": "b2", "UserName": "bob@x.example", "Title": "Clerk", "IsActive": False},
}


async def _id(scim: Scim, anchor: str) -> str:
    _, body = await scim.call("GET", f'/Users?filter=AzureObjectID+eq+"{anchor}"')
    return str(body["Resources"][0]["id"])


async def test_search_endpoints_take_a_search_request(make_scim: MakeScim) -> None:
    scim = await make_scim(seed=PEOPLE)
    request = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'title eq "clerk"',
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 10,
    }
    for path in ("/Users/.search", "/.search"):
        status, body = await scim.call("POST", path, request)
        assert status == 200
        assert body["totalResults"] == 1
        [user] = body["Resources"]
        assert set(user) == {"schemas", "id", "userName"} and user["userName"] == "bob@x.example"


async def test_attributes_and_excluded_attributes(make_scim: MakeScim) -> None:
    scim = await make_scim(seed=PEOPLE)
    user_id = await _id(scim, "a1")

    _, only = await scim.call("GET", f"/Users/{user_id}?attributes={EXT}:Title,active")
    assert only == {"schemas": [CORE, EXT], "id": user_id, "active": True, EXT: {"Title": "Boss"}}
    _, without = await scim.call("GET", f"/Users/{user_id}?excludedAttributes=meta,title,id")
    assert "meta" not in without and "Title" not in without[EXT]
    assert without["id"] == user_id and without[EXT]["UserName"] == "ann@x.example"


async def test_etags_guard_writes_and_reads(make_scim: MakeScim) -> None:
    scim = await make_scim(seed=PEOPLE)
    user_id = await _id(scim, "a1")
    response = await scim.client.get(f"{scim.base}/Users/{user_id}", headers=scim.headers())
    version = response.headers["ETag"]
    assert version == (await response.json(content_type=None))["meta"]["version"]

    unchanged = await scim.client.get(
        f"{scim.base}/Users/{user_id}", headers={**scim.headers(), "If-None-Match": version}
    )
    assert unchanged.status == 304
    patch = {"Operations": [{"op": "replace", "path": "title", "value": "Chief"}]}
    stale = {**scim.headers(), "If-Match": 'W/"999"'}
    status, body = await scim.call("PATCH", f"/Users/{user_id}", patch, headers=stale)
    assert (status, body["status"]) == (412, "412")
    assert scim.memory.objects["a1"]["Title"] == "Boss"
    fresh = {**scim.headers(), "If-Match": version}
    status, body = await scim.call("PATCH", f"/Users/{user_id}", patch, headers=fresh)
    assert status == 200 and body["meta"]["version"] != version
    assert scim.memory.objects["a1"]["Title"] == "Chief"


async def test_discovery_documents_by_id(make_scim: MakeScim) -> None:
    scim = await make_scim()
    status, schema = await scim.call("GET", f"/Schemas/{EXT}")
    assert status == 200 and schema["id"] == EXT
    anchor = next(a for a in schema["attributes"] if a["name"] == "AzureObjectID")
    assert (anchor["uniqueness"], anchor["required"]) == ("server", True)
    status, user_type = await scim.call("GET", "/ResourceTypes/User")
    assert status == 200 and user_type["schemaExtensions"] == [{"schema": EXT, "required": True}]
    assert (await scim.call("GET", "/Schemas/urn:nope"))[0] == 404
    _, config = await scim.call("GET", "/ServiceProviderConfig")
    assert config["etag"]["supported"] is True and config["filter"]["maxResults"] == 1000


async def test_a_body_that_is_not_json_is_415(make_scim: MakeScim) -> None:
    scim = await make_scim()
    response = await scim.client.post(
        f"{scim.base}/Users",
        data=b"AzureObjectID=a",
        headers={**scim.headers(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    body = await response.json(content_type=None)
    assert (response.status, body["status"]) == (415, "415")
    assert response.content_type == "application/scim+json"


async def test_external_id_is_kept_by_the_host_and_never_exported(make_scim: MakeScim) -> None:
    scim = await make_scim()
    created: dict[str, Any] = {"externalId": "ext-1", EXT: {"AzureObjectID": "c3"}}
    status, body = await scim.call("POST", "/Users", created)
    assert (status, body["externalId"]) == (201, "ext-1")
    assert scim.memory.objects["c3"] == {"AzureObjectID": "c3"}
    _, found = await scim.call("GET", '/Users?filter=externalId+eq+"ext-1"')
    assert [r["id"] for r in found["Resources"]] == [body["id"]]


async def test_a_connector_without_rename_refuses_a_new_anchor(make_scim: MakeScim) -> None:
    scim = await make_scim(seed=PEOPLE)
    user_id = await _id(scim, "a1")
    status, body = await scim.call("PUT", f"/Users/{user_id}", {EXT: {"AzureObjectID": "z9"}})
    assert (status, body["scimType"]) == (400, "mutability")
    assert set(scim.memory.objects) == {"a1", "b2"}
