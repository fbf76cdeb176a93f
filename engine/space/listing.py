"""Pages of a connector's whole list without walking every object before the page.

SCIM pages by position (``startIndex``), which SQL can only reach with OFFSET: a
walk over every object before the page, twice per request with the count. The
listing instead keeps every ``STRIDE``-th anchor in order (1 % of the anchors) and
the total, valid until the next commit of any write; a page then starts from the
nearest kept anchor and skips fewer than ``STRIDE`` objects. Rebuilding after a
write is one pass over the listing index, on a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ecmahost.engine.space.lookup import Lookup, connect_read_only
from ecmahost.engine.space.models import ObjectRow
from ecmahost.engine.space.plans import OBJECTS_LISTING, indexed
from ecmahost.engine.space.states import ObjectState
from ecmahost.engine.space.stored import StoredObject

__all__ = ["Listing"]

STRIDE = 100

_LISTING = indexed(ObjectRow.__tablename__, "o", OBJECTS_LISTING)
_MARKS = (
    "SELECT anchor FROM (SELECT anchor, row_number() OVER (ORDER BY anchor) - 1 AS n "
    f"FROM {_LISTING} WHERE connector = ? AND state = ?) WHERE n % ? = 0 ORDER BY anchor"
)
_TOTAL = f"SELECT count(*) FROM {_LISTING} WHERE connector = ? AND state = ?"
_PRESENT = ObjectState.PRESENT.value


@dataclass(frozen=True, slots=True)
class _Marks:
    version: int
    total: int
    anchors: tuple[str, ...]
    """The anchors at positions 0, STRIDE, 2 * STRIDE, … in anchor order."""


class Listing:
    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._marks: dict[str, _Marks] = {}
        self._building = asyncio.Lock()

    async def page(
        self, connector: str, start_index: int, count: int
    ) -> tuple[int, list[StoredObject]]:
        """The total and the page at 1-based ``start_index`` of every visible object."""
        marks = await self._current(connector)
        position = start_index - 1
        if count == 0 or position >= marks.total:
            return marks.total, []
        anchor = marks.anchors[position // STRIDE]
        return marks.total, self._lookup.page_from(connector, anchor, position % STRIDE, count)

    async def _current(self, connector: str) -> _Marks:
        marks = self._marks.get(connector)
        if marks is not None and marks.version == self._lookup.data_version():
            return marks
        async with self._building:  # requests arriving meanwhile share one rebuild
            version = self._lookup.data_version()
            marks = self._marks.get(connector)
            if marks is None or marks.version != version:
                # The version is read before the marks: a write committing during the
                # rebuild changes it, and the next page rebuilds again.
                marks = await asyncio.to_thread(self._build, connector, version)
                self._marks[connector] = marks
        return marks

    def _build(self, connector: str, version: int) -> _Marks:
        db = connect_read_only(self._lookup.path)
        try:
            db.execute("BEGIN")  # one read transaction: the marks and the total agree
            anchors = tuple(a for (a,) in db.execute(_MARKS, (connector, _PRESENT, STRIDE)))
            total = int(db.execute(_TOTAL, (connector, _PRESENT)).fetchone()[0])
            db.execute("COMMIT")
        finally:
            db.close()
        return _Marks(version, total, anchors)
