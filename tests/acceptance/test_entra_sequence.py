"""The documented Entra provisioning sequence against the real server and CSV file."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Server, filter_query, read_csv
from tests.acceptance.postgresql_space import postgresql_csv_config
from tests.conftest import CORE, EXT
from tests.connectors.sql.postgres import postgres_fixture

__all__ = ["postgres_fixture"]  # the session's PostgreSQL server, as fixture `postgres`

COLUMNS = ("AzureObjectID", "IsActive", "DisplayName", "EmployeeId", "Title", "UserName", "Email")
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _user(i: int) -> dict[str, str]:
    return {
        "AzureObjectID": str(uuid.UUID(int=0x5EED_0000_0000_4000_8000_0000_0000_0000 + i)),
        "UserName": f"user{i}@contoso.example",
        "DisplayName": f"User {i}",
        "Title": "Engineer",
        "Email": f"user{i}@contoso.example",
        "IsActive": "True",
    }


def _row(user: dict[str, str]) -> dict[str, str]:
    return {column: user.get(column, "") for column in COLUMNS}


class Expected:
    """What the CSV file must hold, kept beside the sequence."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = read_csv(path)

    def check(self) -> None:
        assert read_csv(self.path) == self.rows

    def set(self, anchor: str, **values: str) -> None:
        self.rows[anchor] = {**self.rows[anchor], **values}


def _create(server: Server, user: dict[str, str]) -> str:
    # Entra's matching: both matching attributes miss, then it creates.
    for attribute in ("AzureObjectID", "UserName"):
        found = server.request(
            "GET", "/Users" + filter_query(f'{attribute} eq "{user[attribute]}"')
        )
        assert (found.status, found.body["totalResults"]) == (200, 0)
    created = server.request(
        "POST", "/Users", {"schemas": [CORE], "meta": {"resourceType": "User"}, EXT: user}
    )
    assert created.status == 201, created.body
    assert created.headers["location"].endswith(f"/Users/{created.body['id']}")
    assert created.body[EXT] == {**user, "IsActive": True}
    return str(created.body["id"])


def _patch(server: Server, user_id: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
    response = server.request(
        "PATCH", f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": operations}
    )
    assert response.status == 200, response.body
    return dict(response.body)


def _all_users(server: Server) -> list[dict[str, Any]]:
    listed = server.request("GET", "/Users?startIndex=1&count=1000")
    assert listed.status == 200
    return [{k: v for k, v in r.items() if k != "meta"} for r in listed.body["Resources"]]


@pytest.fixture(params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest,
    csv_config: Path,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
) -> Server:
    """The demo CSV connector, its connector space on each kind of database."""
    if request.param == "sqlite":
        return server_factory(csv_config)
    config, env = postgresql_csv_config(write_config, request.getfixturevalue("postgres"))
    return server_factory(config, env=env)


def test_entra_sequence_end_to_end(server: Server, config_dir: Path) -> None:
    expected = Expected(config_dir / "state" / "InputFile.txt")
    assert len(expected.rows) == 4

    # Test connection, then schema discovery.
    probe = server.request("GET", "/Users" + filter_query(f'PLACEHOLDER eq "{uuid.uuid4()}"'))
    assert (probe.status, probe.body["totalResults"], probe.body["Resources"]) == (200, 0, [])
    schemas = server.request("GET", "/Schemas")
    extension = next(s for s in schemas.body["Resources"] if s["id"] == EXT)
    types = {a["name"]: a["type"] for a in extension["attributes"]}
    assert types["IsActive"] == "boolean" and types["AzureObjectID"] == "string"

    users = [_user(i) for i in range(25)]
    ids = {}
    for user in users:
        ids[user["AzureObjectID"]] = _create(server, user)
        expected.rows[user["AzureObjectID"]] = _row(user)
    expected.check()

    # Read back by id and by (URN-qualified, differently cased) filter.
    for user in users:
        by_id = server.request("GET", f"/Users/{ids[user['AzureObjectID']]}")
        assert by_id.body[EXT]["UserName"] == user["UserName"]
        by_filter = server.request(
            "GET", "/Users" + filter_query(f'{EXT}:username eq "{user["UserName"].upper()}"')
        )
        assert [r["id"] for r in by_filter.body["Resources"]] == [ids[user["AzureObjectID"]]]

    _patch_in_every_dialect(server, users, ids, expected)

    before_restart = _all_users(server)
    server.restart()
    assert _all_users(server) == before_restart

    _disable_enable_delete(server, users, ids, expected)
    server.restart()
    assert len(_all_users(server)) == 4
    expected.check()


def _patch_in_every_dialect(
    server: Server, users: list[dict[str, str]], ids: dict[str, str], expected: Expected
) -> None:
    a, b, c, d = (u["AzureObjectID"] for u in users[:4])
    # Default dialect: capitalised op, URN path.
    _patch(server, ids[a], [{"op": "Replace", "path": f"{EXT}:Title", "value": "Store Manager"}])
    expected.set(a, Title="Store Manager")
    expected.check()
    # aadOptscim062020: lower-case op, path-less value with a core name and a URN key.
    _patch(
        server,
        ids[b],
        [{"op": "replace", "value": {"displayName": "Bjfe", f"{EXT}:Title": "Aklq"}}],
    )
    expected.set(b, DisplayName="Bjfe", Title="Aklq")
    expected.check()
    # RFC nested path-less form.
    _patch(server, ids[c], [{"op": "replace", "value": {EXT: {"Title": "x", "EmployeeId": "E-7"}}}])
    expected.set(c, Title="x", EmployeeId="E-7")
    expected.check()
    # Add of a core attribute the target does not have: accepted, nothing changes.
    body = _patch(server, ids[d], [{"op": "Add", "path": "nickName", "value": "Babs"}])
    assert "nickName" not in body
    expected.check()
    # Several operations at once, in order; remove clears a value.
    _patch(
        server,
        ids[d],
        [
            {"op": "Add", "path": f"{EXT}:EmployeeId", "value": "E-1"},
            {"op": "Replace", "path": f"{EXT}:EmployeeId", "value": "E-2"},
            {"op": "Remove", "path": f"{EXT}:Email"},
        ],
    )
    expected.set(d, EmployeeId="E-2", Email="")
    expected.check()


def _disable_enable_delete(
    server: Server, users: list[dict[str, str]], ids: dict[str, str], expected: Expected
) -> None:
    shapes = [
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "replace", "path": "active", "value": False},
        {"op": "Replace", "path": f"{EXT}:IsActive", "value": "False"},
    ]
    for index, user in enumerate(users):
        body = _patch(server, ids[user["AzureObjectID"]], [shapes[index % 3]])
        assert body["active"] is False
        expected.set(user["AzureObjectID"], IsActive="False")
    expected.check()
    for user in users:
        body = _patch(
            server,
            ids[user["AzureObjectID"]],
            [{"op": "replace", "path": "active", "value": "true"}],
        )
        assert body["active"] is True
        expected.set(user["AzureObjectID"], IsActive="True")
    expected.check()
    for user in users:
        deleted = server.request("DELETE", f"/Users/{ids[user['AzureObjectID']]}")
        assert deleted.status == 204
        assert server.request("GET", f"/Users/{ids[user['AzureObjectID']]}").status == 404
        del expected.rows[user["AzureObjectID"]]
    expected.check()
