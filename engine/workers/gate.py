"""The run gate of one connector: any number of export batches at once, or one
full import alone. An import waiting for its turn holds back new export batches,
so a busy queue cannot starve it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["RunGate"]


class RunGate:
    def __init__(self) -> None:
        self._condition = asyncio.Condition()
        self._exports = 0
        self._importing = False
        self._import_waiting = 0

    @asynccontextmanager
    async def export(self) -> AsyncIterator[None]:
        async with self._condition:
            await self._condition.wait_for(lambda: not self._importing and not self._import_waiting)
            self._exports += 1
        try:
            yield
        finally:
            async with self._condition:
                self._exports -= 1
                self._condition.notify_all()

    @asynccontextmanager
    async def full_import(self) -> AsyncIterator[None]:
        async with self._condition:
            self._import_waiting += 1
            try:
                await self._condition.wait_for(lambda: not self._importing and not self._exports)
            finally:
                self._import_waiting -= 1
            self._importing = True
        try:
            yield
        finally:
            async with self._condition:
                self._importing = False
                self._condition.notify_all()
