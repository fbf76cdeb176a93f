"""The SCIM front-end over the in-memory connector, through real HTTP on loopback:
Entra's queries, errors, export outcomes, deprovisioning, coalescing and replay."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from ecmahost.connectors.base import Change, ChangeKind
from ecmahost.connectors.exceptions import ConflictError, PermanentError, TransientError
from ecmahost.engine import queue
from ecmahost.engine.exceptions import DomainError
from ecmahost.engine.queue import EventView
from ecmahost.engine.scim.http import scim_response
from ecmahost.engine.space.store import object_id_for

from tests.conftest import CORE, EXT, TOKEN, Scim
from tests.helpers import eventually

MakeScim = Callable[..., Awaitable[Scim]]

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"
GUID = "8646d011-1693-4cd3-9ee6-0d7482ca2219"
ADELE = "de4841f1-cb92-48e5-9056-29a36a0653c2"


def user(anchor: str, **attributes: Any) -> dict[str, Any]:
    """Entra's create body: extension attributes only, IsActive as a string."""
    return {
        "schemas": [CORE],
        "meta": {"resourceType": "User"},
        EXT: {"AzureObjectID": anchor, "IsActive": "True", **attributes},
    }


def replace(name: str, value: Any) -> dict[str, Any]:
    path = name if name == "active" else f"{EXT}:{name}"
    return {"Operations": [{"op": "Replace", "path": path, "value": value}]}


def uid(anchor: str) -> str:
    return object_id_for("Mem", anchor)


async def events(scim: Scim, status: str | None = None) -> list[EventView]:
    assert scim.host.space is not None
    chosen = None if status is None else queue.EventStatus(status)
    return await queue.list_events(scim.host.space, connector=scim.name, status=chosen)


async def find(scim: Scim, filter_text: str) -> dict[str, Any]:
    status, body = await scim.call("GET", f"/Users?filter={filter_text}")
    assert status == 200, body
    return body


async def settled(scim: Scim, status: str, count: int) -> list[EventView]:
    """The events in ``status`` once there are ``count`` of them (the target is
    updated a moment before the queue records it)."""

    async def ready() -> list[EventView] | None:
        found = await events(scim, status)
        return found if len(found) == count else None

    return await eventually(ready, message=f"{count} events {status}")


def anchors(listing: dict[str, Any]) -> list[str]:
    return [r[EXT]["AzureObjectID"] for r in listing["Resources"]]


PEOPLE = {
    "a1": {
        "AzureObjectID": "a1",
        "UserName": "Adele@Contoso.com",
        "DisplayName": "Adele Vance",
        "Title": "Retail Manager",
        "IsActive": True,
    },
    "b2": {
        "AzureObjectID": "b2",
        "UserName": "Bianca@Contoso.com",
        "DisplayName": "Bianca Pisani",
        "Title": "Retail Manager",
        "IsActive": True,
    },
    "c3": {
        "AzureObjectID": "c3",
        "UserName": "Cameron@Contoso.com",
        "DisplayName": "Cameron White",
        "Title": "Marketing",
        "IsActive": False,
    },
}


# -- queries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        f'PLACEHOLDER eq "{GUID}"',
        f'PLACEHOLDER+eq+"{GUID}"',
        f"PLACEHOLDER%20eq%20%22{GUID}%22",
        f'AzureObjectID eq "{GUID}"',
        f'{EXT}:AzureObjectID+eq+"{GUID}"',
    ],
)
async def test_the_test_connection_query_answers_an_empty_list(
    make_scim: MakeScim, query: str
) -> None:
    scim = await make_scim(seed=PEOPLE)

    status, body = await scim.call("GET", f"/Users?filter={query}")

    assert status == 200, body
    assert body == {
        "schemas": [LIST],
        "totalResults": 0,
        "Resources": [],
        "startIndex": 1,
        "itemsPerPage": 0,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('AzureObjectID eq "a1"', ["a1"]),
        ('AzureObjectID+eq+"b2"', ["b2"]),
        (f'{EXT}:AzureObjectID eq "c3"', ["c3"]),
        (f'{EXT.upper()}:azureobjectid eq "c3"', ["c3"]),
        ('azureobjectid eq "A1"', ["a1"]),
        ('AZUREOBJECTID eq "a1"', ["a1"]),
        ('userName eq "ADELE@contoso.COM"', ["a1"]),
        (f'{CORE}:userName eq "bianca@contoso.com"', ["b2"]),
        ('displayName eq "cameron white"', ["c3"]),
        ('Title eq "retail manager"', ["a1", "b2"]),
        ('Title eq "Retail Manager" and DisplayName eq "Bianca Pisani"', ["b2"]),
        ('Title+eq+"Retail+Manager"+and+UserName+eq+"adele@contoso.com"', ["a1"]),
        ('Title eq "Retail Manager" and DisplayName eq "Cameron White"', []),
        ('IsActive eq "False"', ["c3"]),
        ("active eq false", ["c3"]),
        ('NoSuchAttribute eq "a1"', []),
        ('Title eq "Retail"', []),
    ],
)
async def test_filters(make_scim: MakeScim, query: str, expected: list[str]) -> None:
    scim = await make_scim(seed=PEOPLE)

    body = await find(scim, query)

    assert anchors(body) == expected
    assert body["totalResults"] == len(expected)


async def test_a_found_user_is_the_full_resource(make_scim: MakeScim) -> None:
    scim = await make_scim(seed=PEOPLE)

    body = await find(scim, 'AzureObjectID eq "a1"')
    status, by_id = await scim.call("GET", f"/Users/{uid('a1')}")

    assert status == 200
    assert body["Resources"] == [by_id]
    assert by_id["id"] == uid("a1")
    assert by_id[EXT] == PEOPLE["a1"]
    assert by_id["active"] is True
    assert by_id["meta"]["location"].endswith(f"/ecma2host_Mem/scim/Users/{uid('a1')}")


FIVE = {a: {"AzureObjectID": a, "Title": "t"} for a in ("e", "c", "a", "d", "b")}


@pytest.mark.parametrize(
    ("query", "expected", "start_index"),
    [
        ("", ["a", "b", "c", "d", "e"], 1),
        ("?startIndex=1&count=2", ["a", "b"], 1),
        ("?startIndex=2&count=2", ["b", "c"], 2),
        ("?startIndex=4&count=10", ["d", "e"], 4),
        ("?startIndex=5&count=1", ["e"], 5),
        ("?startIndex=6&count=2", [], 6),
        ("?startIndex=100", [], 100),
        ("?count=0", [], 1),
        ("?startIndex=0&count=1", ["a"], 1),
        ('?filter=Title+eq+"t"&startIndex=3&count=2', ["c", "d"], 3),
    ],
)
async def test_paging(
    make_scim: MakeScim, query: str, expected: list[str], start_index: int
) -> None:
    scim = await make_scim(seed=FIVE)

    status, body = await scim.call("GET", f"/Users{query}")

    assert status == 200, body
    assert anchors(body) == expected
    assert body["totalResults"] == 5
    assert body["itemsPerPage"] == len(expected)
    assert body["startIndex"] == start_index


# -- errors ---------------------------------------------------------------------------


async def send(
    scim: Scim, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, dict[str, str], str]:
    """A raw request: status, headers and text (for checks Scim.call does not expose)."""
    response = await scim.client.request(
        method, path, headers=scim.headers() if headers is None else headers, **kw
    )
    text = await response.text()
    return response.status, dict(response.headers), text


def assert_scim_error(
    status: int, headers: dict[str, str], text: str, expected: int
) -> dict[str, Any]:
    assert status == expected, text
    assert headers["Content-Type"].startswith(SCIM_JSON)
    assert "Traceback" not in text
    assert 'File "' not in text
    body = json.loads(text)
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(expected)
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer"},
        {},
    ],
)
async def test_a_wrong_or_missing_token_is_401(
    make_scim: MakeScim, headers: dict[str, str]
) -> None:
    scim = await make_scim(seed=PEOPLE)

    status, got, text = await send(scim, "GET", f"{scim.base}/Users", headers=headers)

    assert_scim_error(status, got, text, 401)
    assert got["WWW-Authenticate"] == "Bearer"
    assert "Adele" not in text


async def test_a_wrong_token_writes_nothing(make_scim: MakeScim) -> None:
    scim = await make_scim()

    status, _, _ = await send(
        scim, "POST", f"{scim.base}/Users", json=user("x1"), headers={"Authorization": "Bearer no"}
    )

    assert status == 401
    assert await events(scim) == []
    assert scim.memory.objects == {}


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        # An unknown connector answers as a wrong token does: names cannot be probed.
        ("GET", "/ecma2host_Nope/scim/Users", 401),
        ("GET", "/ecma2host_mem/scim/Users", 401),  # the name is case-sensitive
        ("GET", "/ecma2host_Mem/scim/Users/00000000-0000-0000-0000-000000000000", 404),
        ("PATCH", "/ecma2host_Mem/scim/Users/00000000-0000-0000-0000-000000000000", 404),
        ("DELETE", "/ecma2host_Mem/scim/Users/00000000-0000-0000-0000-000000000000", 404),
        ("GET", "/ecma2host_Mem/scim/Nothing", 404),
        ("DELETE", "/ecma2host_Mem/scim/Users", 405),
        ("PUT", "/ecma2host_Mem/scim/Users", 405),
        ("POST", "/ecma2host_Mem/scim/Users/x", 405),
        ("POST", "/ecma2host_Mem/scim/Schemas", 405),
    ],
)
async def test_not_found_and_unsupported_methods_are_scim_errors(
    make_scim: MakeScim, method: str, path: str, expected: int
) -> None:
    scim = await make_scim()

    status, headers, text = await send(scim, method, path, json=replace("Title", "t"))

    assert_scim_error(status, headers, text, expected)
    if expected == 405:
        assert "Allow" in headers


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT"])
@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe", b""])
async def test_malformed_json_is_400(make_scim: MakeScim, method: str, payload: bytes) -> None:
    scim = await make_scim(seed=PEOPLE)
    path = f"{scim.base}/Users" if method == "POST" else f"{scim.base}/Users/{uid('a1')}"

    status, headers, text = await send(
        scim, method, path, data=payload, headers={**scim.headers(), "Content-Type": SCIM_JSON}
    )

    body = assert_scim_error(status, headers, text, 400)
    assert body["scimType"] == "invalidSyntax"


@pytest.mark.parametrize(
    "query",
    ["AzureObjectID eq", 'AzureObjectID eq "a1" and', 'AzureObjectID xx "a1"', '(a eq "1"', '"a1"'],
)
async def test_an_invalid_filter_is_400(make_scim: MakeScim, query: str) -> None:
    scim = await make_scim(seed=PEOPLE)

    status, headers, text = await send(scim, "GET", f"{scim.base}/Users", params={"filter": query})

    body = assert_scim_error(status, headers, text, 400)
    assert body["scimType"] == "invalidFilter"


async def test_a_duplicate_anchor_is_409(make_scim: MakeScim) -> None:
    scim = await make_scim()
    assert (await scim.call("POST", "/Users", user(ADELE)))[0] == 201

    status, headers, text = await send(scim, "POST", f"{scim.base}/Users", json=user(ADELE))

    body = assert_scim_error(status, headers, text, 409)
    assert body["scimType"] == "uniqueness"
    assert len(await events(scim)) == 1


async def test_a_body_over_the_limit_is_413(make_scim: MakeScim) -> None:
    scim = await make_scim()
    oversized = io.BytesIO(b'{"x": "' + b"y" * (2 * 1024 * 1024) + b'"}')

    status, headers, text = await send(
        scim,
        "POST",
        f"{scim.base}/Users",
        data=oversized,
        headers={**scim.headers(), "Content-Type": SCIM_JSON},
    )

    assert_scim_error(status, headers, text, 413)
    assert await events(scim) == []


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "Replace", "path": f"{EXT}:AzureObjectID", "value": "other"},
        {"op": "Remove", "path": f"{EXT}:AzureObjectID"},
    ],
)
async def test_the_anchor_cannot_change(make_scim: MakeScim, operation: dict[str, Any]) -> None:
    scim = await make_scim(seed=PEOPLE)

    status, body = await scim.call("PATCH", f"/Users/{uid('a1')}", {"Operations": [operation]})

    assert (status, body["scimType"]) == (400, "mutability")
    assert scim.memory.objects["a1"] == PEOPLE["a1"]
    assert (await scim.call("GET", f"/Users/{uid('a1')}"))[1][EXT] == PEOPLE["a1"]


async def test_every_response_is_scim_json(make_scim: MakeScim) -> None:
    scim = await make_scim(seed=PEOPLE)
    base = scim.base
    requests: list[tuple[str, str, Any]] = [
        ("GET", f"{base}/Users", None),
        ("GET", f"{base}/Users?filter=PLACEHOLDER+eq+%22{GUID}%22", None),
        ("GET", f"{base}/Users/{uid('a1')}", None),
        ("POST", f"{base}/Users", user("n1")),
        ("POST", f"{base}/Users", user("n1")),
        ("PATCH", f"{base}/Users/{uid('a1')}", replace("Title", "x")),
        ("PATCH", f"{base}/Users/{uid('a1')}", replace("Nope", "x")),
        ("PUT", f"{base}/Users/{uid('b2')}", user("b2", Title="y")),
        ("GET", f"{base}/Schemas", None),
        ("GET", f"{base}/ServiceProviderConfig", None),
        ("GET", f"{base}/ResourceTypes", None),
        ("GET", f"{base}/Groups", None),
        ("GET", f"{base}/Users?filter=bad+filter", None),
        ("GET", f"{base}/Users?count=many", None),
        ("DELETE", f"{base}/Users", None),
        ("GET", "/ecma2host_Nope/scim/Users", None),
        ("GET", f"{base}/Users/00000000-0000-0000-0000-000000000000", None),
    ]
    seen = set()
    for method, path, body in requests:
        status, headers, _ = await send(scim, method, path, json=body)
        seen.add(status)
        assert headers["Content-Type"].startswith(SCIM_JSON), (method, path, status)
    assert seen == {200, 201, 400, 401, 404, 405, 409}


# -- create, read, export outcomes (sync mode) ---------------------------------------------


async def test_create_exports_before_answering(make_scim: MakeScim) -> None:
    scim = await make_scim()

    status, headers, text = await send(
        scim, "POST", f"{scim.base}/Users", json=user(ADELE, DisplayName="Adele Vance")
    )

    assert status == 201, text
    assert headers["Location"].endswith(f"{scim.base}/Users/{uid(ADELE)}")
    assert scim.memory.objects[ADELE] == {
        "AzureObjectID": ADELE,
        "DisplayName": "Adele Vance",
        "IsActive": True,
    }
    status, body = await scim.call("GET", f"/Users/{uid(ADELE)}")
    assert status == 200
    assert body["id"] == uid(ADELE)
    assert body["meta"]["location"] == headers["Location"]


async def test_a_permanent_rejection_is_400_and_leaves_nothing(make_scim: MakeScim) -> None:
    scim = await make_scim()
    scim.memory.reject[ADELE] = PermanentError("bad title")

    status, body = await scim.call("POST", "/Users", user(ADELE, Title="Bad"))

    assert status == 400, body
    assert "bad title" in body["detail"]
    assert ADELE not in scim.memory.objects
    assert (await find(scim, f'AzureObjectID eq "{ADELE}"'))["totalResults"] == 0
    assert (await scim.call("GET", f"/Users/{uid(ADELE)}"))[0] == 404
    [event] = await events(scim)
    assert (event.status, event.last_error) == ("failed", "bad title")


async def test_a_rejected_update_shows_what_the_target_holds(make_scim: MakeScim) -> None:
    scim = await make_scim(seed=PEOPLE)
    scim.memory.reject["a1"] = PermanentError("bad title")

    status, body = await scim.call("PATCH", f"/Users/{uid('a1')}", replace("Title", "Bad"))

    assert status == 400, body
    status, body = await scim.call("GET", f"/Users/{uid('a1')}")
    assert body[EXT]["Title"] == "Retail Manager"
    assert (await find(scim, 'Title eq "Bad"'))["totalResults"] == 0


async def test_a_target_conflict_is_409(make_scim: MakeScim) -> None:
    scim = await make_scim()
    scim.memory.reject[ADELE] = ConflictError("UserName is taken")

    status, body = await scim.call("POST", "/Users", user(ADELE))

    assert status == 409, body
    assert body["scimType"] == "uniqueness"
    assert "UserName is taken" in body["detail"]


async def test_an_unavailable_target_is_503_and_the_worker_retries(make_scim: MakeScim) -> None:
    scim = await make_scim(retry_base_s=0.05)
    scim.memory.fail_with = TransientError("down")

    status, headers, text = await send(scim, "POST", f"{scim.base}/Users", json=user(ADELE))

    assert_scim_error(status, headers, text, 503)
    assert "down" in text
    assert int(headers["Retry-After"]) > 0
    [event] = await events(scim)
    assert event.status in ("pending", "running")
    assert event.last_error == "down"
    assert ADELE not in scim.memory.objects

    scim.memory.fail_with = None

    await eventually(lambda: ADELE in scim.memory.objects)
    assert scim.memory.objects[ADELE] == {"AzureObjectID": ADELE, "IsActive": True}
    [done] = await settled(scim, "done", 1)
    assert done.attempts >= 2


async def test_each_refusal_has_its_exact_scim_error(make_scim: MakeScim) -> None:
    """Domain errors become SCIM errors with Entra's status, scimType and detail; only
    the ones worth retrying (the target did not take the change yet) say when."""
    # The wait leaves room for a loaded machine: the rejections must arrive within it.
    scim = await make_scim(seed=PEOPLE, export_wait_s=2, retry_base_s=60)
    scim.memory.reject["n1"] = ConflictError("UserName is taken")
    scim.memory.reject["n2"] = PermanentError("bad title")
    a1 = f"{scim.base}/Users/{uid('a1')}"
    remove_anchor = {"Operations": [{"op": "Remove", "path": f"{EXT}:AzureObjectID"}]}
    requests: list[tuple[str, str, Any, tuple[int, str | None, str]]] = [
        ("GET", f"{scim.base}/Users/nope", None, (404, None, "resource nope not found")),
        (
            "POST",
            f"{scim.base}/Users",
            user("a1"),
            (409, "uniqueness", "an object with anchor 'a1' exists"),
        ),
        (
            "PATCH",
            a1,
            remove_anchor,
            (400, "mutability", "the anchor attribute AzureObjectID cannot be removed"),
        ),
        (
            "PATCH",
            a1,
            replace("AzureObjectID", "x"),
            (400, "mutability", "the anchor attribute AzureObjectID cannot change"),
        ),
        ("POST", f"{scim.base}/Users", user("n1"), (409, "uniqueness", "UserName is taken")),
        ("POST", f"{scim.base}/Users", user("n2"), (400, "invalidValue", "bad title")),
    ]
    for method, path, body, (status, scim_type, detail) in requests:
        got, headers, text = await send(scim, method, path, json=body)

        error = assert_scim_error(got, headers, text, status)
        assert (error.get("scimType"), error["detail"]) == (scim_type, detail), (method, path)
        assert "Retry-After" not in headers

    scim.memory.fail_with = TransientError("down")
    unconfirmed = [
        (
            f"/Users/{uid('a1')}",
            "the target is unavailable: down; it stays queued and will be retried",
        ),
        # waits for the back-off of a1's earlier change: no outcome within export_wait_s
        (
            f"/Users/{uid('a1')}",
            "the target did not confirm the change within 2 s; "
            "it stays queued and will be exported",
        ),
    ]
    for path, detail in unconfirmed:
        got, headers, text = await send(scim, "PATCH", scim.base + path, json=replace("Title", "y"))

        error = assert_scim_error(got, headers, text, 503)
        assert ("scimType" not in error, error["detail"]) == (True, detail)
        assert headers["Retry-After"] == "30"


async def test_a_domain_error_without_a_scim_mapping_is_an_internal_error(
    make_scim: MakeScim, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    scim = await make_scim()

    def unmapped(*_: Any) -> None:
        raise DomainError("a rule nobody mapped")

    monkeypatch.setattr("ecmahost.engine.scim.users.stage_write", unmapped)
    with caplog.at_level(logging.ERROR, "ecmahost.engine.scim.app"):
        got, headers, text = await send(scim, "POST", f"{scim.base}/Users", json=user("n1"))

    error = assert_scim_error(got, headers, text, 500)
    assert error["detail"] == "internal error; the host's log has the details"
    assert "a rule nobody mapped" not in text
    [record] = [r for r in caplog.records if r.getMessage() == "request failed"]
    assert record.exc_info is not None and isinstance(record.exc_info[1], DomainError)
    assert await events(scim) == []


# -- queued mode ------------------------------------------------------------------------


async def test_queued_mode_answers_at_once_then_exports(make_scim: MakeScim) -> None:
    scim = await make_scim(export_mode="queued", retry_base_s=0.05)
    scim.memory.fail_with = TransientError("down")  # sync mode would answer 503

    status, body = await scim.call("POST", "/Users", user(ADELE, Title="Queued"))

    assert status == 201, body
    assert body[EXT]["Title"] == "Queued"
    assert ADELE not in scim.memory.objects
    scim.memory.fail_with = None
    await eventually(lambda: ADELE in scim.memory.objects)
    assert scim.memory.objects[ADELE]["Title"] == "Queued"


# -- deprovisioning ---------------------------------------------------------------------


async def test_disable_none_is_stored_only(make_scim: MakeScim) -> None:
    scim = await make_scim(deprovision='disable = "none"\ndisable_attribute = "IsActive"')
    assert (await scim.call("POST", "/Users", user(ADELE)))[0] == 201
    batches = len(scim.memory.batches)

    status, body = await scim.call("PATCH", f"/Users/{uid(ADELE)}", replace("active", "False"))

    assert status == 200, body
    assert body["active"] is False
    assert scim.memory.objects[ADELE]["IsActive"] is True
    assert len(scim.memory.batches) == batches
    assert len(await events(scim)) == 1  # the create's only
    status, body = await scim.call("GET", f"/Users/{uid(ADELE)}")
    assert (status, body["active"]) == (200, False)


async def test_disable_delete_removes_the_object_from_the_target(make_scim: MakeScim) -> None:
    scim = await make_scim(deprovision='disable = "delete"\ndisable_attribute = "IsActive"')
    assert (await scim.call("POST", "/Users", user(ADELE)))[0] == 201

    status, _ = await scim.call("PATCH", f"/Users/{uid(ADELE)}", replace("active", False))

    assert status == 200
    assert ADELE not in scim.memory.objects
    assert scim.memory.batches[-1] == [Change(ChangeKind.DELETE, ADELE)]
    assert (await scim.call("GET", f"/Users/{uid(ADELE)}"))[0] == 404


async def test_disable_set_attribute_exports_is_active_false(make_scim: MakeScim) -> None:
    scim = await make_scim(deprovision='disable = "set_attribute"\ndisable_attribute = "IsActive"')
    assert (await scim.call("POST", "/Users", user(ADELE, Title="T")))[0] == 201

    status, body = await scim.call("PATCH", f"/Users/{uid(ADELE)}", replace("active", "false"))

    assert (status, body["active"]) == (200, False)
    assert scim.memory.objects[ADELE] == {"AzureObjectID": ADELE, "Title": "T", "IsActive": False}
    status, body = await scim.call("GET", f"/Users/{uid(ADELE)}")
    assert (status, body["active"], body[EXT]["IsActive"]) == (200, False, False)


async def test_disable_none_still_exports_the_other_changes_of_the_request(
    make_scim: MakeScim,
) -> None:
    # Entra sends a user's attribute changes and its disable in one PATCH when both
    # happen in one cycle; only the disable is "stored only".
    scim = await make_scim(
        seed=PEOPLE, deprovision='disable = "none"\ndisable_attribute = "IsActive"'
    )
    body = {
        "Operations": [
            {"op": "Replace", "path": f"{EXT}:Title", "value": "Store Manager"},
            {"op": "Replace", "path": f"{EXT}:IsActive", "value": "False"},
        ]
    }

    status, answer = await scim.call("PATCH", f"/Users/{uid('a1')}", body)

    assert (status, answer["active"]) == (200, False)
    assert scim.memory.objects["a1"] == {**PEOPLE["a1"], "Title": "Store Manager"}


async def test_delete_as_disable_keeps_the_object_in_the_target_but_not_in_scim(
    make_scim: MakeScim,
) -> None:
    scim = await make_scim(
        seed=PEOPLE,
        deprovision='disable = "set_attribute"\ndisable_attribute = "IsActive"\ndelete = "disable"',
    )

    status, _ = await scim.call("DELETE", f"/Users/{uid('a1')}")

    assert status == 204
    assert scim.memory.objects["a1"] == {**PEOPLE["a1"], "IsActive": False}
    assert (await scim.call("GET", f"/Users/{uid('a1')}"))[0] == 404
    assert (await find(scim, 'AzureObjectID eq "a1"'))["totalResults"] == 0
    assert [e.status for e in await events(scim)] == ["done"]


async def test_delete_removes_the_object(make_scim: MakeScim) -> None:
    scim = await make_scim(seed=PEOPLE)

    status, body = await scim.call("DELETE", f"/Users/{uid('a1')}")

    assert (status, body) == (204, None)
    assert "a1" not in scim.memory.objects
    assert set(scim.memory.objects) == {"b2", "c3"}
    assert (await scim.call("GET", f"/Users/{uid('a1')}"))[0] == 404
    assert (await scim.call("DELETE", f"/Users/{uid('a1')}"))[0] == 404
    assert anchors(await find(scim, 'Title eq "Retail Manager"')) == ["b2"]


async def test_a_deleted_anchor_can_be_created_again(make_scim: MakeScim) -> None:
    scim = await make_scim(seed=PEOPLE)
    assert (await scim.call("DELETE", f"/Users/{uid('a1')}"))[0] == 204

    status, body = await scim.call("POST", "/Users", user("a1", Title="Back"))

    assert (status, body["id"]) == (201, uid("a1"))
    assert scim.memory.objects["a1"]["Title"] == "Back"


# -- coalescing and replay ------------------------------------------------------------------


async def test_changes_queued_while_the_target_is_down_coalesce(make_scim: MakeScim) -> None:
    scim = await make_scim(export_mode="queued", retry_base_s=0.05, retry_max_attempts=50)
    assert (await scim.call("POST", "/Users", user(ADELE)))[0] == 201
    await eventually(lambda: ADELE in scim.memory.objects)
    scim.memory.fail_with = TransientError("down")

    for title in ("one", "two", "three"):
        status, body = await scim.call("PATCH", f"/Users/{uid(ADELE)}", replace("Title", title))
        assert (status, body[EXT]["Title"]) == (200, title)

    async def all_three_tried_and_waiting() -> bool:
        waiting = await events(scim, "pending")
        return len(waiting) == 3 and all(e.attempts >= 1 for e in waiting)

    await eventually(all_three_tried_and_waiting)
    assert scim.memory.objects[ADELE].get("Title") is None
    # No await between these two lines: every batch after `tried` ran with the target up.
    tried = len(scim.memory.batches)
    scim.memory.fail_with = None

    await eventually(lambda: scim.memory.objects[ADELE].get("Title") == "three")
    final = {"AzureObjectID": ADELE, "IsActive": True, "Title": "three"}
    assert scim.memory.batches[tried:] == [[Change(ChangeKind.REPLACE, ADELE, final)]]
    assert scim.memory.batches[-1] == [Change(ChangeKind.REPLACE, ADELE, final)]
    await settled(scim, "done", 4)


async def test_a_later_change_supersedes_a_failed_event(make_scim: MakeScim) -> None:
    scim = await make_scim(seed=PEOPLE, export_wait_s=30.0)
    scim.memory.reject["a1"] = PermanentError("bad title")
    status, body = await scim.call("PATCH", f"/Users/{uid('a1')}", replace("Title", "First"))
    assert status == 400, body
    [failed] = await events(scim, "failed")
    assert (failed.anchor, failed.payload["Title"]) == ("a1", "First")
    scim.memory.reject.clear()
    batches = len(scim.memory.batches)

    # The later change does not wait behind the failed one: the target takes it now.
    status, body = await scim.call("PATCH", f"/Users/{uid('a1')}", replace("Title", "Second"))

    assert status == 200, body
    assert scim.memory.batches[batches:] == [
        [Change(ChangeKind.REPLACE, "a1", {**PEOPLE["a1"], "Title": "Second"})]
    ]
    [superseded] = await events(scim, "superseded")
    assert superseded.id == failed.id
    assert scim.host.space is not None
    assert await queue.replay(scim.host.space, None) == []  # nothing left to replay
    [done] = await settled(scim, "done", 1)
    assert done.payload["Title"] == "Second"
    status, body = await scim.call("GET", f"/Users/{uid('a1')}")
    assert body[EXT]["Title"] == "Second"


@pytest.mark.parametrize(
    "value",
    ["Zoë 名前 \u2028", 2**63 - 1, 2**64 + 5, -(2**70)],
    ids=["text", "int64", "big", "neg"],
)
def test_response_bodies_are_utf8_json_of_any_integer(value: object) -> None:
    data = {"schemas": [CORE], "value": value, "nested": {"list": [value, True, None]}}

    response = scim_response(data, 201, {"ETag": 'W/"1"'})

    assert response.status == 201 and response.charset == "utf-8"
    assert response.content_type == "application/scim+json"
    assert isinstance(response.body, bytes)
    assert json.loads(response.body.decode("utf-8")) == data
