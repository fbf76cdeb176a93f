"""The webhook sender against a real receiver on loopback: order, drop-oldest,
back-off until it gives up, and a URL logged without its query string."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from ecmahost.engine.notify import Alert, Alerts, safe_url


async def _receiver(statuses: list[int], got: list[dict[str, Any]]) -> TestServer:
    """Answers with ``statuses`` in turn (then 204), recording what it took."""

    async def hook(request: web.Request) -> web.Response:
        status = statuses.pop(0) if statuses else 204
        if status < 300:
            got.append(await request.json())
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def _run_until(alerts: Alerts, done: Any, timeout_s: float = 5.0) -> None:
    task = asyncio.create_task(alerts.run())
    try:
        async with asyncio.timeout(timeout_s):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_full_queue_drops_the_oldest_and_sends_the_rest_in_order() -> None:
    got: list[dict[str, Any]] = []
    server = await _receiver([], got)
    try:
        alerts = Alerts(str(server.make_url("/hook")), max_queued=2)
        for name in ("A", "B", "C"):
            alerts.send(Alert("connector.degraded", name, {"reason": "down"}))
        await _run_until(alerts, lambda: len(got) == 2)
    finally:
        await server.close()
    assert [g["connector"] for g in got] == ["B", "C"]
    assert got[0]["event"] == "connector.degraded" and got[0]["detail"] == {"reason": "down"}


async def test_a_refused_alert_is_retried_then_logged_without_the_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[dict[str, Any]] = []
    statuses = [500, 503, 500]
    server = await _receiver(statuses, got)
    url = str(server.make_url("/hook")) + "?key=the-webhook-secret"
    try:
        alerts = Alerts(url, tries=3, first_delay_s=0.01)
        alerts.send(Alert("export.failed", "CSV"))
        alerts.send(Alert("connector.recovered", "CSV"))
        await _run_until(alerts, lambda: got)
    finally:
        await server.close()
    assert statuses == [] and [g["event"] for g in got] == ["connector.recovered"]
    [failed] = [r for r in caplog.records if getattr(r, "action", None) == "notify.failed"]
    assert "/hook" in failed.getMessage() and "the-webhook-secret" not in failed.getMessage()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:pw@hooks.example.org:8443/a/b?key=s#frag",
            "https://hooks.example.org:8443/a/b",
        ),
        ("http://hooks.example.org/x", "http://hooks.example.org/x"),
    ],
)
def test_safe_url_keeps_no_credentials_query_or_fragment(url: str, shown: str) -> None:
    assert safe_url(url) == shown
