"""The CSV demo through the running host: hand edits, hostile values, refusals."""

from __future__ import annotations

import csv
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.conftest import Server, ecmahost, filter_query, read_csv, wait_until
from tests.conftest import EXT, TOKEN, csv_connector_toml

HOSTILE = {
    "DisplayName": 'Zoë Ångström; "the boss"\nsecond line',
    "Title": "=cmd|' /C calc'!A0",
    "EmployeeId": 'a;b;"c"\r\nd',
    "Email": "zoë@exämple.org",
}


def _csv_path(config_dir: Path) -> Path:
    return config_dir / "state" / "InputFile.txt"


def _append_row(path: Path, row: list[str]) -> None:
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(row)


def _find(server: Server, anchor: str) -> list[dict[str, object]]:
    found = server.request("GET", "/Users" + filter_query(f'AzureObjectID eq "{anchor}"'))
    assert found.status == 200
    return list(found.body["Resources"])


def test_hand_edits_show_after_import(server: Server, csv_config: Path, config_dir: Path) -> None:
    path = _csv_path(config_dir)
    anchor = str(uuid.uuid4())
    _append_row(path, [anchor, "True", "Hand Made", "", "Clerk", "hand@contoso.example", ""])
    assert _find(server, anchor) == []

    result = ecmahost(csv_config, "import", "CSV")
    assert result.returncode == 0, result.stderr
    assert "import of CSV: 5 records" in result.stdout
    [found] = _find(server, anchor)
    assert found[EXT] == {  # type: ignore[index]
        "AzureObjectID": anchor,
        "IsActive": True,
        "DisplayName": "Hand Made",
        "Title": "Clerk",
        "UserName": "hand@contoso.example",
    }

    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if anchor not in line]
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    assert ecmahost(csv_config, "import", "CSV").returncode == 0
    assert _find(server, anchor) == []
    assert server.request("GET", f"/Users/{found['id']}").status == 404


def test_hostile_values_round_trip(server: Server, csv_config: Path, config_dir: Path) -> None:
    anchor = str(uuid.uuid4())
    values = {"AzureObjectID": anchor, "UserName": "zoe@contoso.example", **HOSTILE}
    created = server.request("POST", "/Users", {EXT: values})
    assert created.status == 201, created.body

    row = read_csv(_csv_path(config_dir))[anchor]
    assert {k: row[k] for k in values} == values
    assert len(read_csv(_csv_path(config_dir))) == 5

    assert ecmahost(csv_config, "import", "CSV").returncode == 0
    server.restart()
    [found] = _find(server, anchor)
    assert found[EXT] == values  # type: ignore[index]
    cached = ecmahost(csv_config, "cache", "CSV")
    assert cached.returncode == 0
    dumped = {o["anchor"]: o["attributes"] for o in map(json.loads, cached.stdout.splitlines())}
    assert dumped[anchor] == values


def test_bad_requests_leave_the_file_alone(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], config_dir: Path
) -> None:
    other = "other-token-0123456789"
    config = write_config(
        csv_connector_toml()
        + csv_connector_toml("Other", other).replace("state/InputFile.txt", "state/Other.txt")
    )
    server = server_factory(config)
    existing = read_csv(_csv_path(config_dir))
    anchor = next(iter(existing))
    before = _csv_path(config_dir).read_bytes()

    cases = [
        (server.request("GET", "/Users", token="wrong-token-0123456789"), 401),
        (server.request("GET", "/Users", token=None), 401),
        (server.request("GET", "/Users", token=other), 401),
        (
            server.request(
                "GET", "/Users", base=server.url().replace("ecma2host_CSV", "ecma2host_csv")
            ),
            401,  # an unknown connector (names are case-sensitive) answers as a wrong token
        ),
        (server.request("POST", "/Users", raw=b'{"schemas": ['), 400),
        (server.request("GET", f"/Users/{uuid.uuid4()}"), 404),
        (
            server.request(
                "PATCH",
                f"/Users/{uuid.uuid4()}",
                {"Operations": [{"op": "Replace", "path": "active", "value": False}]},
            ),
            404,
        ),
        (
            server.request(
                "POST", "/Users", {EXT: {"AzureObjectID": anchor, "DisplayName": "Dup"}}
            ),
            409,
        ),
    ]
    for response, status in cases:
        assert response.status == status, response.body
        assert response.headers["content-type"].startswith("application/scim+json")
        assert response.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert response.body["status"] == str(status)
        assert "Traceback" not in response.body["detail"]
    assert cases[-1][0].body["scimType"] == "uniqueness"
    assert _csv_path(config_dir).read_bytes() == before
    # The other connector's token works on its own connector only.
    assert server.request("GET", "/Users", name="Other", token=other).status == 200
    # One log line per request, and no secret in any of them.
    logged = wait_until(
        lambda: (text := "".join(server.stderr_lines)).count('"scim.request"') > len(cases) and text
    )
    assert TOKEN not in logged and other not in logged


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda toml: re.sub(r'token = ".*"', 'token = "short1"', toml), "connectors.CSV.token"),
        (lambda toml: toml.replace('type = "csv"', 'type = "punchcards"'), "connectors.CSV.type"),
        (
            lambda toml: toml.replace('schema_file = "Schema.xml"', 'schema_file = "Missing.xml"'),
            "Missing.xml",
        ),
    ],
    ids=["short-token", "unknown-type", "missing-schema"],
)
def test_bad_config_refuses_to_start_with_one_line(
    write_config: Callable[..., Path], mutate: Callable[[str], str], expected: str
) -> None:
    config = write_config(mutate(csv_connector_toml()))
    result = ecmahost(config, "serve", "--listen", "127.0.0.1:0", timeout_s=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ecmahost: error: ") and expected in lines[0]


def test_self_signed_tls_and_test_connection(
    csv_config: Path, server_factory: Callable[..., Server], config_dir: Path
) -> None:
    server = server_factory(csv_config, "--tls", "self-signed")
    url = server.url()
    assert url.startswith("https://127.0.0.1:")
    base = url.removesuffix("/ecma2host_CSV/scim")
    assert (config_dir / "state" / "tls" / "cert.pem").exists()

    ok = ecmahost(csv_config, "test-connection", "CSV", "--url", base)
    assert ok.returncode == 0, ok.stderr
    assert "succeeded" in ok.stdout
    server.stop()
    down = ecmahost(csv_config, "test-connection", "CSV", "--url", base)
    assert down.returncode == 1
    assert "failed" in down.stderr


def test_token_command_prints_a_long_random_token() -> None:
    first = ecmahost(Path("unused.toml"), "token").stdout.strip()
    second = ecmahost(Path("unused.toml"), "token").stdout.strip()
    assert len(first) >= 32 and first != second


def test_anchor_rename_keeps_the_scim_id(
    server: Server, csv_config: Path, config_dir: Path
) -> None:
    old, new, newer = (str(uuid.uuid4()) for _ in range(3))
    created = server.request("POST", "/Users", {EXT: {"AzureObjectID": old, "Title": "t"}})
    user_id = created.body["id"]

    replaced = server.request(
        "PUT", f"/Users/{user_id}", {EXT: {"AzureObjectID": new, "Title": "u"}}
    )
    assert (replaced.status, replaced.body["id"]) == (200, user_id)
    rows = read_csv(_csv_path(config_dir))
    assert new in rows and old not in rows and rows[new]["Title"] == "u"

    patched = server.request(
        "PATCH",
        f"/Users/{user_id}",
        {"Operations": [{"op": "replace", "path": f"{EXT}:AzureObjectID", "value": newer}]},
    )
    assert (patched.status, patched.body[EXT]["AzureObjectID"]) == (200, newer)
    assert ecmahost(csv_config, "import", "CSV").returncode == 0
    server.restart()
    found = server.request("GET", f"/Users/{user_id}")  # the id a client cached still works
    assert (found.status, found.body[EXT]["AzureObjectID"], found.body[EXT]["Title"]) == (
        200,
        newer,
        "u",
    )
    assert [r["id"] for r in _find(server, newer)] == [user_id]
    assert _find(server, new) == [] and _find(server, old) == []
    # Renaming onto an anchor another user holds is a conflict, and changes nothing.
    taken = next(iter(read_csv(_csv_path(config_dir))))
    clash = server.request("PUT", f"/Users/{user_id}", {EXT: {"AzureObjectID": taken}})
    assert (clash.status, clash.body["scimType"]) == (409, "uniqueness")
    assert newer in read_csv(_csv_path(config_dir))


def test_a_target_not_there_yet_is_served_once_it_comes(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], config_dir: Path
) -> None:
    toml = csv_connector_toml().replace("state/InputFile.txt", "later/InputFile.txt")
    config = write_config(toml)
    server = server_factory(config, wait_ready=False)  # the port opens without the target

    assert server.request("GET", "/Users").status == 503
    # The target comes up well after the host has tried it.
    wait_until(lambda: '"action": "connector.open_retry"' in "".join(server.stderr_lines))
    (config_dir / "later").mkdir()

    wait_until(lambda: server.request("GET", "/Users").status == 200, timeout_s=20)
    assert server.request("GET", "/Users").body["totalResults"] == 4


def test_a_target_that_stays_down_does_not_stop_the_host(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    toml = csv_connector_toml().replace("state/InputFile.txt", "never/InputFile.txt")
    server = server_factory(write_config(toml, "reconnect_max_s = 1"), wait_ready=False)
    wait_until(lambda: "".join(server.stderr_lines).count('"connector.open_retry"') >= 3)
    down = server.request("GET", "/Users")
    assert (down.status, down.headers["retry-after"]) == (503, "10")
    assert "waiting for its target" in down.body["detail"]
    assert server.process is not None and server.process.poll() is None
