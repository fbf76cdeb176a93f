"""The status page under /admin/, driven by a real headless Chromium against a real
host: log in, see failed exports with their errors, replay one, discard another, ask
for an import; and what it refuses (a wrong token, a form without its CSRF token, a
form posted from another site).

Chromium is Debian's (``apt-get install chromium``), never a browser Playwright would
download. Without it the tests are skipped, unless ``ECMAHOST_REQUIRE_SERVERS=1``.
``ECMAHOST_SCREENSHOT=1`` also refreshes the README's ``docs/status-page.png``."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.acceptance.conftest import Server, wait_until
from tests.conftest import EXT, REPO, csv_connector_toml
from tests.helpers import unavailable

ADMIN = "admin-token-for-the-page"
HOST_TOML = f'admin_token = "{ADMIN}"'
COOKIE = "ecmahost_admin"
README_SCREENSHOT = REPO / "docs" / "status-page.png"

# One try per export: a failure is final at once, so the page lists it.
BREAKABLE = csv_connector_toml(export_mode='"queued"', retry_max_attempts="1")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium", path="/usr/bin")
    if found:
        return found
    reason = "Chromium is needed for the status page's browser test (apt-get install chromium)"
    unavailable(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    yield context.new_page()
    context.close()


def _admin(server: Server) -> str:
    return server.url().rsplit("/ecma2host_", 1)[0] + "/admin/"


def _failed_ids(server: Server) -> list[int]:
    listed = server.request(
        "GET", "", base=_admin(server) + "exports?status=failed", token=ADMIN
    ).body
    return [event["id"] for event in listed["exports"]]


def _reload_until(page: Any, check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """The page is not live: reload it until ``check`` holds."""

    def reloaded() -> bool:
        page.reload()
        return check()

    wait_until(reloaded, timeout_s)


def _log_in(page: Any, server: Server, token: str) -> Any:
    page.goto(_admin(server))
    page.fill("#token", token)
    with page.expect_response(lambda r: r.url.endswith("/admin/login")) as answer:
        page.click("button[type=submit]")
    return answer.value


def test_log_in_replay_discard_and_import(
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    config_dir: Path,
    page: Any,
    tmp_path: Path,
) -> None:
    server = server_factory(write_config(BREAKABLE, HOST_TOML))
    # A folder where the target file was: every write to the target fails.
    target = config_dir / "state" / "InputFile.txt"
    target.rename(target.with_suffix(".kept"))
    target.mkdir()
    # The second anchor holds markup: the page must show it as text.
    anchors = [str(uuid.uuid4()), f"<b>{uuid.uuid4()}</b>"]
    for anchor in anchors:
        created = server.request("POST", "/Users", {EXT: {"AzureObjectID": anchor}})
        assert created.status in (201, 202), created.body
    replayed_id, discarded_id = wait_until(lambda: len(ids := _failed_ids(server)) == 2 and ids)

    refused = _log_in(page, server, "not-the-admin-token")
    assert refused.status == 401
    assert "not the admin token" in page.inner_text(".error-box")
    assert page.context.cookies() == []
    page.screenshot(path=tmp_path / "1-refused.png")

    assert _log_in(page, server, ADMIN).status == 303
    policy = page.goto(_admin(server)).headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    row = page.locator(f"#failed-{replayed_id}")
    assert anchors[0] in row.inner_text()
    assert "Is a directory" in row.locator("td.error").inner_text()
    assert "/" not in row.locator("td.error").inner_text()  # the file's name, not its path
    shown = page.locator(f"#failed-{discarded_id}")
    assert anchors[1] in shown.inner_text() and shown.locator("b").count() == 0
    page.screenshot(path=tmp_path / "2-failed.png", full_page=True)
    if os.environ.get("ECMAHOST_SCREENSHOT") == "1":
        page.screenshot(path=README_SCREENSHOT, full_page=True)

    [cookie] = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (COOKIE, True, "Strict")
    assert cookie["path"] == "/admin" and ADMIN not in cookie["value"]

    # The target is back: the replayed event is exported, the discarded one never is.
    target.rmdir()
    target.with_suffix(".kept").rename(target)
    row.get_by_role("button", name="Replay").click()
    assert page.locator(f"#failed-{replayed_id}").count() == 0
    done = page.locator(f"tr.outcome-{replayed_id} td.status").first
    _reload_until(page, lambda: done.inner_text() == "done")
    assert anchors[0] in target.read_text(encoding="utf-8")

    page.locator(f"#failed-{discarded_id}").get_by_role("button", name="Discard").click()
    assert page.locator("table.failed-events").count() == 0
    assert page.locator(f"tr.outcome-{discarded_id} td.status").first.inner_text() == "discarded"
    assert anchors[1] not in target.read_text(encoding="utf-8")

    last_import = page.locator(".last-import time")
    before = last_import.get_attribute("datetime")
    page.get_by_role("button", name="Import now").click()
    assert "import of CSV is asked for" in page.inner_text(".notice")
    _reload_until(page, lambda: last_import.get_attribute("datetime") != before)
    page.screenshot(path=tmp_path / "3-after.png", full_page=True)


def test_forms_without_the_csrf_token_or_from_another_site_are_refused(
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    config_dir: Path,
    page: Any,
) -> None:
    server = server_factory(write_config(BREAKABLE, HOST_TOML))
    target = config_dir / "state" / "InputFile.txt"
    original = target.read_bytes()
    target.unlink()
    target.mkdir()
    server.request("POST", "/Users", {EXT: {"AzureObjectID": str(uuid.uuid4())}})
    [event_id] = wait_until(lambda: _failed_ids(server))
    _log_in(page, server, ADMIN)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    replay = f"{_admin(server)}events/{event_id}/replay"

    # The browser context's own request client: the session cookie goes along.
    without_token = page.context.request.post(replay, form={}, max_redirects=0)
    assert without_token.status == 403
    other_site = page.context.request.post(
        replay, form={"csrf": csrf}, headers={"Origin": "https://evil.example"}, max_redirects=0
    )
    assert other_site.status == 403
    cross_site = page.context.request.post(
        replay, form={"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"}, max_redirects=0
    )
    assert cross_site.status == 403
    assert _failed_ids(server) == [event_id]

    beyond_64_bits = replay.replace(f"/{event_id}/", "/" + "9" * 20 + "/")
    assert page.context.request.post(beyond_64_bits, form={"csrf": csrf}).status in (401, 404)

    target.rmdir()  # the target is back: the replayed change goes through
    target.write_bytes(original)
    with_token = page.context.request.post(replay, form={"csrf": csrf}, max_redirects=0)
    assert with_token.status == 303
    wait_until(lambda: _failed_ids(server) == [])


def test_wrong_tokens_are_refused_with_one_warning_and_logout_ends_the_session(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], page: Any
) -> None:
    server = server_factory(write_config(BREAKABLE, HOST_TOML))
    login = _admin(server) + "login"
    for _ in range(3):
        assert page.context.request.post(login, form={"token": "guess-" * 3}).status == 401
    warnings = [line for line in server.stderr_lines if "admin.login_refused" in line]
    assert len(warnings) == 1, warnings

    _log_in(page, server, ADMIN)
    [cookie] = page.context.cookies()
    page.get_by_role("button", name="Log out").click()
    assert page.url.endswith("/admin/login") and page.context.cookies() == []
    # The old cookie is worth nothing now: the session is gone on the server.
    page.context.add_cookies([cookie])
    page.goto(_admin(server))
    assert page.url.endswith("/admin/login")


def test_the_page_is_off_without_an_admin_token(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    server = server_factory(write_config(BREAKABLE))
    for path in ("", "login"):
        answer = server.request("GET", "", base=_admin(server) + path, token=None)
        assert answer.status == 404 and "admin_token" in answer.body["detail"]


def test_over_https_the_cookie_is_secure(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], browser: Any
) -> None:
    server = server_factory(write_config(BREAKABLE, HOST_TOML), "--tls", "self-signed")
    assert _admin(server).startswith("https://")
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        assert _log_in(page, server, ADMIN).status == 303
        [cookie] = context.cookies()
        assert cookie["secure"] is True and cookie["httpOnly"] is True
    finally:
        context.close()
