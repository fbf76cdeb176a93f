"""``/health`` and ``/ready``.

``GET /health`` is a liveness check: the process answers, nothing is read. With
``?detail=1``, and at ``GET /ready``, the admin token gets each connector's truth:
its state (``importing``, ``serving``, ``degraded`` and why), its last import and
its export queue in numbers, and the served certificate (``tls``: names, SHA-256,
expiry, ``expiring`` from 30 days before it). ``/ready`` answers 503 while any connector is not
serving, so a readiness probe can use it as is."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.host import Host
from ecmahost.engine.scim.http import HOST_KEY, require_bearer, scim_response
from ecmahost.engine.space import cluster
from ecmahost.engine.space.health import ImportSummary
from ecmahost.engine.space.models import utcnow
from ecmahost.engine.space.states import RunKind
from ecmahost.engine.workers.state import Phase

__all__ = ["health", "ready"]


async def health(request: web.Request) -> web.Response:
    if request.query.get("detail", "") in ("", "0", "false"):
        return scim_response({"status": "ok"})
    body = await _detail(request)
    return scim_response(body)


async def ready(request: web.Request) -> web.Response:
    body = await _detail(request)
    return scim_response(body, 200 if body["status"] == Phase.SERVING.value else 503)


async def _detail(request: web.Request) -> dict[str, Any]:
    host = request.app[HOST_KEY]
    _authenticate(request, host)
    connectors = {name: await _connector(host, name) for name in host.states}
    phases = {c["state"] for c in connectors.values()}
    # The worst phase wins: degraded over importing over serving.
    status = next(
        (p.value for p in (Phase.DEGRADED, Phase.IMPORTING) if p.value in phases),
        Phase.SERVING.value,
    )
    certificate = host.certificate
    body: dict[str, Any] = {
        "status": status,
        "connectors": connectors,
        "tls": None if certificate is None else certificate.as_json(),
    }
    if host.config.shared_database:  # the hosts of the cluster, this one among them
        members = await cluster.members(host.config.database_url)
        body["cluster"] = {
            "this_host": host.relay.cluster.id,
            "hosts": [m.as_json() for m in members],
        }
    return body


async def _connector(host: Host, name: str) -> dict[str, Any]:
    assert host.space is not None, "the host is open while the app serves"
    state = host.states[name]
    last = await host.space.last_import(name)
    queue = await host.space.queue_summary(name)
    oldest = queue.oldest_pending_at
    runtime = host.runtimes.get(name)
    deltas: dict[str, Any] = {}
    if runtime is not None and runtime.importer.deltas is not None:
        delta = await host.space.last_import(name, RunKind.DELTA)
        deltas["last_delta"] = None if delta is None else _run(delta)
    return {
        "state": state.phase.value,
        "reason": state.reason,
        "filled": state.filled,
        "last_import": None if last is None else _run(last),
        **deltas,
        "exports": {
            "pending": queue.pending,
            "failed": queue.failed,
            "oldest_pending_age_s": None
            if oldest is None
            else round((utcnow() - oldest).total_seconds(), 1),
        },
    }


def _run(run: ImportSummary) -> dict[str, Any]:
    return {
        "finished_at": run.finished_at.isoformat() + "Z",
        "result": run.status,
        "counts": run.counts,
        "error": run.error,
    }


def _authenticate(request: web.Request, host: Host) -> None:
    expected = host.config.host.admin_token
    if expected is None:
        raise ScimError(404, "the detail of health is off: set host.admin_token to use it")
    require_bearer(request, expected.get_secret_value(), "admin token")
