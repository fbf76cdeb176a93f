"""What the monitoring tests share: a host with a CSV connector (its start-up import
adds the demo's four users) and a memory connector that rejects one value for good,
plus a scrape parsed with prometheus_client's own parser."""

from __future__ import annotations

import http.client
import json
import os
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.conftest import Server
from tests.conftest import EXT, TOKEN, csv_connector_toml, memory_connector_toml

ADMIN = "admin-token-for-metrics"
REJECTED = "Rejected-By-The-Target"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def connectors_toml(mem_token: str = TOKEN) -> str:
    """Both connectors' tokens by reference (``env:``), as a production file has them:
    a literal one is warned of before the log is set up, in no format."""
    os.environ["ECMAHOST_TEST_TOKEN_MEM"] = mem_token
    mem = memory_connector_toml("Mem").replace(
        f'token = "{TOKEN}"', 'token = "env:ECMAHOST_TEST_TOKEN_MEM"', 1
    )
    return (
        csv_connector_toml()
        + mem
        + f'\n[connectors.Mem.settings]\nreject_values = ["{REJECTED}"]\n'
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def root(server: Server, name: str = "CSV") -> str:
    return server.url(name).rsplit("/ecma2host_", 1)[0]


def create(server: Server, name: str = "Mem", display: str = "Ada", token: str = TOKEN) -> Any:
    anchor = str(uuid.uuid4())
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
        "userName": f"{anchor}@contoso.example",
        EXT: {"AzureObjectID": anchor, "DisplayName": display},
    }
    return server.request("POST", "/Users", body, name=name, token=token)


def get(url: str, token: str | None = None, method: str = "GET") -> tuple[int, str]:
    """A plain GET (the exposition is text, not JSON): status and body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection.request(method, parts.path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8")
    finally:
        connection.close()


def post(url: str, token: str, body: Any = None) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        connection.request(
            "POST",
            parts.path + (f"?{parts.query}" if parts.query else ""),
            body=json.dumps(body or {}).encode(),
            headers=headers,
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def log_entries(server: Server) -> list[dict[str, Any]]:
    """The host's JSON log lines so far."""
    return [json.loads(line) for line in list(server.stderr_lines) if line.startswith("{")]
