"""The wake-up socket between the command line and a serving host."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import pytest
from ecmahost.engine.queue import wakeup

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Unix sockets as on Linux")


async def woken_by_poke(state_dir: Path) -> int:
    """Listen on ``state_dir``, poke it twice, and count the wake-ups seen."""
    woken = asyncio.Event()
    count = 0

    def wake() -> None:
        nonlocal count
        count += 1
        woken.set()

    listener = asyncio.create_task(wakeup.listen(state_dir, wake))
    try:
        for _ in range(200):  # until it is bound
            if wakeup.poke(state_dir):
                break
            await asyncio.sleep(0.01)
        await asyncio.wait_for(woken.wait(), 2.0)
        assert wakeup.poke(state_dir)
        await asyncio.sleep(0.05)
        return count
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def test_a_poke_wakes_the_listener_and_nobody_listening_is_no_error(tmp_path: Path) -> None:
    assert not wakeup.poke(tmp_path)  # nobody listens
    assert await woken_by_poke(tmp_path) >= 1
    assert not (tmp_path / wakeup.SOCKET_NAME).exists()  # cleaned up on stop
    assert not wakeup.poke(tmp_path)


async def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / wakeup.SOCKET_NAME).write_bytes(b"")  # a host that died left it
    assert not wakeup.poke(tmp_path)
    assert await woken_by_poke(tmp_path) >= 1


async def test_a_deep_state_folder_uses_an_abstract_address(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    assert wakeup.address(deep) == wakeup.address(deep)
    assert str(wakeup.address(deep)).startswith("\0")
    assert await woken_by_poke(deep) >= 1
