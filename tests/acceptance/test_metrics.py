"""Prometheus metrics over real HTTP from a host subprocess, read with
prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from tests.acceptance.conftest import Server, wait_until
from tests.acceptance.monitoring import (
    ADMIN,
    REJECTED,
    Samples,
    connectors_toml,
    create,
    free_port,
    get,
    post,
    root,
    samples,
    value,
)
from tests.conftest import TOKEN, csv_connector_toml

USERS = "/ecma2host_{connector}/scim/Users"


def _scrape(server: Server) -> Samples:
    status, text = get(root(server) + "/metrics", ADMIN)
    assert status == 200, text
    return samples(text)


def test_a_scripted_session_shows_in_the_counters_and_gauges(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    server = server_factory(write_config(connectors_toml(), f'admin_token = "{ADMIN}"'))
    created = [create(server) for _ in range(2)]
    assert [c.status for c in created] == [201, 201]
    rejected = create(server, display=REJECTED)
    assert rejected.status == 400, rejected.body
    assert server.request("GET", "/Users", name="Mem", token="not-the-token-at-all").status == 401
    stranger = root(server) + "/ecma2host_Stranger/scim"
    assert server.request("GET", "/Users", base=stranger).status == 401
    brewed = get(server.url("Mem") + "/Users", TOKEN, method="PROPFIND")
    assert brewed[0] == 405, brewed
    assert post(root(server) + "/admin/imports/CSV", ADMIN) == 202
    wait_until(
        lambda: value(_scrape(server), "ecmahost_imports_total", connector="CSV", result="ok") == 2
    )

    found = _scrape(server)
    requests = "ecmahost_scim_requests_total"
    assert value(found, requests, connector="Mem", method="POST", route=USERS, status="201") == 2
    assert value(found, requests, connector="Mem", method="POST", route=USERS, status="400") == 1
    assert value(found, requests, connector="Mem", method="GET", route=USERS, status="401") == 1
    assert value(found, requests, connector="", method="GET", route=USERS, status="401") == 1
    assert (
        value(found, requests, connector="", method="other", route="unmatched", status="405") == 1
    )
    admin_route = "/admin/imports/{connector}"
    assert (
        value(found, requests, connector="CSV", method="POST", route=admin_route, status="202") == 1
    )
    latency = "ecmahost_scim_request_duration_seconds_count"
    assert value(found, latency, connector="Mem", method="POST", route=USERS) == 3

    exports = "ecmahost_exports_total"
    assert value(found, exports, connector="Mem", operation="add", outcome="done") == 2
    assert value(found, exports, connector="Mem", operation="add", outcome="failed") == 1
    export_count = "ecmahost_export_duration_seconds_count"
    assert value(found, export_count, connector="Mem", operation="add") == 3

    # The start-up import added the demo's four users; the second found them all.
    assert value(found, "ecmahost_import_objects_total", connector="CSV", change="added") == 4
    assert value(found, "ecmahost_import_duration_seconds_count", connector="CSV") == 2

    assert value(found, "ecmahost_export_failed_events", connector="Mem") == 1
    assert value(found, "ecmahost_export_queue_pending", connector="Mem") == 0
    assert value(found, "ecmahost_export_oldest_pending_age_seconds", connector="Mem") == 0
    assert value(found, "ecmahost_connector_state", connector="Mem", state="serving") == 1
    assert value(found, "ecmahost_connector_state", connector="Mem", state="degraded") == 0
    assert value(found, "process_resident_memory_bytes") > 0

    # Labels name routes and configured connectors, never a user or an id.
    ids = {c.body["id"] for c in created}
    labels = {v for _, pairs in found for _, v in pairs}
    assert not ids & labels and not any(
        REJECTED in v or "@" in v or "Stranger" in v for v in labels
    )


def test_a_change_waiting_for_its_target_shows_in_the_queue_gauges(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    toml = (
        connectors_toml()
        .replace("[connectors.Mem.settings]", "[connectors.Mem.settings]\nfail_for_s = 600", 1)
        .replace('type = "memory"', 'type = "memory"\nexport_mode = "queued"', 1)
    )
    server = server_factory(write_config(toml, f'admin_token = "{ADMIN}"'))
    assert create(server).status == 201  # queued: answered before the export

    def queued() -> Samples | None:
        found = _scrape(server)
        return found if value(found, "ecmahost_export_queue_pending", connector="Mem") else None

    found = wait_until(queued)
    assert value(found, "ecmahost_export_queue_pending", connector="Mem") == 1
    assert value(found, "ecmahost_export_oldest_pending_age_seconds", connector="Mem") > 0
    wait_until(
        lambda: (
            value(
                _scrape(server),
                "ecmahost_exports_total",
                connector="Mem",
                operation="add",
                outcome="retrying",
            )
            >= 1
        )
    )


def test_metrics_need_the_admin_token_and_are_off_without_one(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    with_token = server_factory(write_config(csv_connector_toml(), f'admin_token = "{ADMIN}"'))
    assert get(root(with_token) + "/metrics")[0] == 401
    assert get(root(with_token) + "/metrics", TOKEN)[0] == 401  # a connector's token is not it
    with_token.stop()

    without = server_factory(write_config(csv_connector_toml()))
    assert get(root(without) + "/metrics", ADMIN)[0] == 404


def test_the_scrape_only_address_needs_no_token(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    port = free_port()
    server = server_factory(
        write_config(csv_connector_toml(), f'metrics_listen = "127.0.0.1:{port}"')
    )
    status, text = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    found = samples(text)
    assert value(found, "ecmahost_connector_state", connector="CSV", state="serving") == 1
    assert get(f"http://127.0.0.1:{port}/ecma2host_CSV/scim/Users", TOKEN)[0] == 404
    assert get(root(server) + "/metrics")[0] == 404  # the SCIM port still has no /metrics


def test_the_served_certificates_expiry_is_a_gauge(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    port = free_port()
    config = write_config(csv_connector_toml(), f'metrics_listen = "127.0.0.1:{port}"')
    server_factory(config, "--tls", "self-signed")
    pem = (config.parent / "state" / "tls" / "cert.pem").read_bytes()
    not_after = x509.load_pem_x509_certificate(pem).not_valid_after_utc

    found = samples(get(f"http://127.0.0.1:{port}/metrics")[1])
    expiry = value(found, "ecmahost_tls_certificate_expiry_timestamp_seconds")
    assert expiry == not_after.timestamp()
