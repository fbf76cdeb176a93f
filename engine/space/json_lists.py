"""A list of values as one JSON parameter, read back as rows for ``IN``.

One parameter instead of one per value: SQLAlchemy would coerce thousands of them
one by one for a batch, and compile the statement anew for every length. SQLite
reads the list with ``json_each``; PostgreSQL with ``json_array_elements_text``,
whose text is cast back to the column's type where that is not text (a cast SQLite
makes too, to no effect).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BindParameter, Select, Text, cast, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import TypeEngine

__all__ = ["among", "json_list", "listed"]


class _json_each(GenericFunction[Any]):
    name = "json_each"
    inherit_cache = True


@compiles(_json_each, "postgresql")
def _json_each_postgresql(element: _json_each, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_array_elements_text(CAST({compiler.process(element.clauses, **kw)} AS json))"


def listed(values: str | BindParameter[Any], type_: TypeEngine[Any] | None = None) -> Select[Any]:
    """The values of the JSON list ``values`` (text, or a parameter bound to such
    text) as a subquery for ``IN``; ``type_``: the values' type when not text."""
    value = _json_each(values).table_valued("value").c.value
    return select(value if type_ is None or isinstance(type_, Text) else cast(value, type_))


def among(values: Iterable[Any], type_: TypeEngine[Any] | None = None) -> Select[Any]:
    """``values`` as a subquery for ``IN``."""
    return listed(json_list(values), type_)


def json_list(values: Iterable[Any]) -> str:
    """``values`` as the JSON text a ``listed`` parameter is bound to."""
    return json.dumps(list(values))
