"""A client probing the real server over HTTP learns nothing from its answers: which
connector names exist, or a URL it wrote itself in the Host header."""

from __future__ import annotations

import http.client
import json
import ssl
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.acceptance.conftest import Server
from tests.conftest import EXT, TOKEN, csv_connector_toml

SPOOFED = "evil.example:666"


def _send(
    server: Server, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    """A raw request with the given headers, ``Host`` included when given."""
    url = urlsplit(server.url())
    connection: http.client.HTTPConnection
    if url.scheme == "https":
        # The self-signed certificate is not what this file tests.
        unverified = ssl._create_unverified_context()
        connection = http.client.HTTPSConnection(url.netloc, context=unverified, timeout=30)
    else:
        connection = http.client.HTTPConnection(url.netloc, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _new_user() -> dict[str, Any]:
    anchor = str(uuid.uuid4())
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
        "userName": f"{anchor}@example.org",
        EXT: {"AzureObjectID": anchor, "DisplayName": "Probe"},
    }


def test_an_unknown_connector_answers_as_a_wrong_token_does(server: Server) -> None:
    wrong = {"Authorization": "Bearer wrong-token-0123456789"}
    right = {"Authorization": f"Bearer {TOKEN}"}

    unknown = _send(server, "GET", "/ecma2host_Nope/scim/Users", right)
    unknown_wrong = _send(server, "GET", "/ecma2host_Nope/scim/Users", wrong)
    known_wrong = _send(server, "GET", "/ecma2host_CSV/scim/Users", wrong)

    assert unknown[0] == unknown_wrong[0] == known_wrong[0] == 401
    assert unknown[2] == unknown_wrong[2] == known_wrong[2]
    assert unknown[1]["WWW-Authenticate"] == known_wrong[1]["WWW-Authenticate"] == "Bearer"


def test_locations_never_come_from_the_host_header(server: Server) -> None:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/scim+json",
        "Host": SPOOFED,
    }
    status, answer_headers, body = _send(
        server, "POST", "/ecma2host_CSV/scim/Users", headers, _new_user()
    )
    created = json.loads(body)

    assert status == 201, body
    listening = server.url()  # http://127.0.0.1:<bound port>/ecma2host_CSV/scim
    assert answer_headers["Location"].startswith(listening + "/Users/")
    assert created["meta"]["location"] == answer_headers["Location"]
    status, _, body = _send(server, "GET", "/ecma2host_CSV/scim/Users?count=1", headers)
    assert status == 200
    assert SPOOFED not in body.decode()


def test_locations_come_from_the_public_url_when_set(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    config = write_config(csv_connector_toml(), 'public_url = "https://scim.example.org:8585/"')
    server = server_factory(config)
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/scim+json",
        "Host": SPOOFED,
    }

    status, answer_headers, body = _send(
        server, "POST", "/ecma2host_CSV/scim/Users", headers, _new_user()
    )

    assert status == 201, body
    expected = "https://scim.example.org:8585/ecma2host_CSV/scim/Users/"
    assert answer_headers["Location"].startswith(expected)
    assert json.loads(body)["meta"]["location"] == answer_headers["Location"]


def test_locations_say_https_over_tls(
    csv_config: Path, server_factory: Callable[..., Server]
) -> None:
    server = server_factory(csv_config, "--tls", "self-signed")
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/scim+json",
        "Host": SPOOFED,
    }

    status, answer_headers, body = _send(
        server, "POST", "/ecma2host_CSV/scim/Users", headers, _new_user()
    )

    assert status == 201, body
    assert server.url().startswith("https://127.0.0.1:")
    assert answer_headers["Location"].startswith(server.url() + "/Users/")
