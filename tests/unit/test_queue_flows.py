"""The queue's promises through the SCIM app: outages, poison changes, the admin API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ecmahost.connectors.base import ChangeKind
from ecmahost.engine import queue

from tests.conftest import EXT, Scim
from tests.helpers import eventually

ADMIN = "admin-token-0123456789"
ADMIN_HOST = f'admin_token = "{ADMIN}"'


def create_body(anchor: str, title: str = "t0") -> dict[str, Any]:
    return {EXT: {"AzureObjectID": anchor, "Title": title}}


def retitle(title: str) -> dict[str, Any]:
    return {"Operations": [{"op": "Replace", "path": f"{EXT}:Title", "value": title}]}


async def create_users(scim: Scim, count: int) -> dict[str, str]:
    ids = {}
    for i in range(count):
        status, body = await scim.call("POST", "/Users", create_body(f"u{i:03d}"))
        assert status == 201, body
        ids[f"u{i:03d}"] = body["id"]
    return ids


async def admin(
    scim: Scim, method: str, path: str, body: Any = None, token: str = ADMIN
) -> tuple[int, Any]:
    response = await scim.client.request(
        method, f"/admin{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    return response.status, await response.json(content_type=None)


def exported_titles(scim: Scim, anchor: str) -> list[int]:
    """Every state of ``anchor`` the target was asked to take, in order (tries included)."""
    return [
        int(change.attributes["Title"][1:])
        for batch in scim.memory.batches
        for change in batch
        if change.anchor == anchor
        and change.kind is not ChangeKind.DELETE
        and change.attributes["Title"][1:].isdigit()
    ]


@pytest.mark.slow
async def test_an_outage_under_load_loses_nothing_and_drains_by_itself(make_scim: Any) -> None:
    scim = await make_scim(
        export_mode="queued", retry_base_s=0.5, retry_cap_s=2.0, retry_max_attempts=50
    )
    ids = await create_users(scim, 40)
    await eventually(lambda: len(scim.memory.objects) == 40)
    scim.memory.fail_for(10)
    rounds = 10

    async def client(anchors: list[str]) -> None:
        for n in range(1, rounds + 1):
            for anchor in anchors:
                assert (await scim.call("PATCH", f"/Users/{ids[anchor]}", retitle(f"t{n}")))[
                    0
                ] == 200
            await asyncio.sleep(1.1)  # the load spans the outage and its end

    anchors = sorted(ids)
    await asyncio.gather(*(client(anchors[i::8]) for i in range(8)))
    await eventually(
        lambda: all(o["Title"] == f"t{rounds}" for o in scim.memory.objects.values()), timeout_s=30
    )

    for anchor in anchors:  # per user, the target never went back to an older state
        titles = exported_titles(scim, anchor)
        assert titles == sorted(titles) and titles[-1] == rounds
    space = scim.host.space
    assert space is not None

    async def all_done() -> list[queue.EventView] | None:  # recorded just after the export
        events = await queue.list_events(space, connector="Mem")
        return events if {e.status for e in events} == {queue.EventStatus.DONE} else None

    events = await eventually(all_done, message="every event done")
    retries = [
        len([h for h in await queue.history(space, e.id) if h["status"] == "retrying"])
        for e in events
    ]
    # Back-off 0.5, 1, 2, 2 … s with jitter down to half: at most ~12 failed tries fit
    # in 10 s, and an event queued when the outage began was retried several times.
    assert max(retries) <= 13
    assert max(retries) >= 4


async def test_a_poison_change_fails_alone_and_replays(make_scim: Any) -> None:
    scim = await make_scim(export_mode="queued", host_toml=ADMIN_HOST)
    ids = await create_users(scim, 5)
    await eventually(lambda: len(scim.memory.objects) == 5)
    scim.memory.reject_values = {"poison"}

    await scim.call("PATCH", f"/Users/{ids['u000']}", retitle("poison"))
    [failed] = await eventually(
        lambda: _events(scim, "failed"), message="the poison change lands in failed"
    )
    assert failed.last_error == "the target rejects the value 'poison'"
    for anchor in ("u001", "u002"):  # other users keep flowing
        await scim.call("PATCH", f"/Users/{ids[anchor]}", retitle("t5"))
    await eventually(lambda: scim.memory.objects["u002"]["Title"] == "t5")
    assert scim.memory.objects["u000"]["Title"] == "t0"

    status, listed = await admin(scim, "GET", "/exports?status=failed")
    assert status == 200 and [e["id"] for e in listed["exports"]] == [failed.id]
    scim.memory.reject_values = set()  # the target is fixed
    status, replayed = await admin(scim, "POST", "/exports/replay", {"all": True})
    assert (status, replayed) == (200, {"replayed": [failed.id]})

    await eventually(lambda: scim.memory.objects["u000"]["Title"] == "poison")

    async def history() -> list[str]:  # the target took it; its outcome is recorded next
        shown = (await admin(scim, "GET", f"/exports/{failed.id}"))[1]
        return [h["status"] for h in shown["history"]]

    await eventually(lambda: _last_is_done(history()))
    assert await history() == ["pending", "failed", "replayed", "done"]


@pytest.mark.parametrize("mode", ["sync", "queued"])
async def test_a_newer_change_supersedes_a_rejected_one_at_once(make_scim: Any, mode: str) -> None:
    # export_wait_s far above the bound: a change held behind the failed one would show.
    scim = await make_scim(export_mode=mode, export_wait_s=60.0)
    ids = await create_users(scim, 1)
    user = f"/Users/{ids['u000']}"
    await eventually(lambda: "u000" in scim.memory.objects)
    scim.memory.reject_values = {"poison"}
    clock = asyncio.get_running_loop().time

    async def rejected(body: dict[str, Any], method: str = "PATCH", path: str = user) -> None:
        status, answer = await scim.call(method, path, body)
        assert status == (400 if mode == "sync" else 200 if method == "PATCH" else 201), answer
        await eventually(lambda: _events(scim, "failed"), message="the change failed")

    async def taken(method: str, path: str, body: Any, landed: Any) -> None:
        started = clock()
        status, answer = await scim.call(method, path, body)
        assert status in (200, 201, 204), answer
        await eventually(landed, timeout_s=5.0, interval_s=0.02)
        assert clock() - started < 5.0

    await rejected(retitle("poison"))
    await taken("PATCH", user, retitle("t1"), lambda: scim.memory.objects["u000"]["Title"] == "t1")
    if mode == "sync":  # the target's answer for the newest state: rejected again, at once
        started = clock()
        assert (await scim.call("PATCH", user, retitle("poison")))[0] == 400
        assert clock() - started < 5.0
    else:
        await rejected(retitle("poison"))
    await taken("DELETE", user, None, lambda: "u000" not in scim.memory.objects)

    # A rejected create leaves the target holding nothing: Entra's next create is an add.
    await rejected(create_body("u001", "poison"), "POST", "/Users")
    await taken("POST", "/Users", create_body("u001", "t2"), lambda: "u001" in scim.memory.objects)
    assert scim.memory.objects["u001"]["Title"] == "t2"

    superseded = await eventually(lambda: _events(scim, "superseded"))
    assert len(superseded) == 3 and not await _events(scim, "failed")
    assert scim.host.space is not None
    steps = await queue.history(scim.host.space, superseded[0].id)
    assert [h["status"] for h in steps] == ["pending", "failed", "superseded"]


async def _last_is_done(statuses: Any) -> bool:
    return (await statuses)[-1] == "done"


async def _events(scim: Scim, status: str) -> list[queue.EventView]:
    assert scim.host.space is not None
    return await queue.list_events(scim.host.space, status=queue.EventStatus(status))


async def test_admin_api_needs_its_own_token(make_scim: Any) -> None:
    scim = await make_scim(host_toml=ADMIN_HOST)
    assert (await admin(scim, "GET", "/exports", token="wrong-token-0123456789"))[0] == 401
    status, body = await admin(scim, "GET", "/exports", token=scim.headers()["Authorization"][7:])
    assert status == 401 and body["status"] == "401"  # a connector token is not an admin token
    assert (await admin(scim, "GET", "/exports"))[0] == 200
    assert (await admin(scim, "POST", "/exports/discard", {"ids": "all"}))[0] == 400
    assert (await admin(scim, "POST", "/imports/Nope"))[0] == 404
    assert (await admin(scim, "POST", "/imports/Mem")) == (202, {"requested": "Mem"})


async def test_admin_api_is_off_without_a_token(make_scim: Any) -> None:
    scim = await make_scim()
    status, body = await admin(scim, "GET", "/exports")
    assert status == 404 and "admin_token" in body["detail"]


async def test_discarded_events_are_kept_and_release_the_object(make_scim: Any) -> None:
    scim = await make_scim(export_mode="queued", host_toml=ADMIN_HOST)
    ids = await create_users(scim, 1)
    await eventually(lambda: "u000" in scim.memory.objects)  # else the two coalesce
    scim.memory.reject_values = {"poison"}
    await scim.call("PATCH", f"/Users/{ids['u000']}", retitle("poison"))
    [failed] = await eventually(lambda: _events(scim, "failed"))
    exporter = scim.host.runtime("Mem").exporter
    wakes: list[None] = []
    woken = exporter.wake
    exporter.wake = lambda: (wakes.append(None), woken())[1]  # type: ignore[method-assign]

    assert await admin(scim, "POST", "/exports/discard", {"ids": [failed.id]}) == (
        200,
        {"discarded": [failed.id]},
    )
    assert wakes  # the exporter looks at the queue at once, not at its idle poll
    await scim.call("PATCH", f"/Users/{ids['u000']}", retitle("t3"))
    await eventually(lambda: scim.memory.objects["u000"]["Title"] == "t3")
    [discarded] = await _events(scim, "discarded")
    assert discarded.id == failed.id
