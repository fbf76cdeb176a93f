"""Values the engine sends to the driver itself read back as SQLAlchemy's own: a time
written past SQLAlchemy compares and sorts with one SQLAlchemy wrote."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ecmahost.engine.space.driver import sqlite_time
from sqlalchemy.dialects import sqlite

_STORED = sqlite.DATETIME().bind_processor(sqlite.dialect())


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 12, 7, 1, 2, 3, 4),
        datetime(2026, 12, 7, 1, 2, 3),  # no microseconds: still six digits
        datetime(999, 1, 2, 3, 4, 5),  # a year of three digits: still four
        datetime(2026, 12, 7, 1, 2, 3, 999999, tzinfo=UTC),  # the offset is not stored
    ],
)
def test_a_time_is_stored_as_sqlalchemy_stores_it(at: datetime) -> None:
    assert _STORED is not None
    assert sqlite_time(at) == _STORED(at)
