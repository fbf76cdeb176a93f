"""Layout rules checked over the source: SQL lives in the store alone, and no module
grows too long to read."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "engine"
STORE = ENGINE / "space"
MAX_LINES = 450

_BUILDERS = frozenset(
    {
        # statements and the pieces they are built from
        "select",
        "insert",
        "update",
        "delete",
        "text",
        "func",
        "exists",
        "literal",
        "bindparam",
        "and_",
        "or_",
        "not_",
        "Table",
        # sessions, connections, engines
        "Session",
        "AsyncSession",
        "sessionmaker",
        "async_sessionmaker",
        "create_engine",
        "create_async_engine",
        "Connection",
        "AsyncConnection",
    }
)
_RUNNERS = frozenset(
    {"exec_driver_sql", "execute", "executemany", "scalar", "scalars", "stream_scalars"}
)
_SESSION_OPENERS = frozenset({"read", "write", "begin", "connect", "begin_nested"})
_RAW_SQL = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\bPRAGMA\b|\bBEGIN\s+IMMEDIATE\b"
)
_RAW_TEXT = re.compile(r"exec_driver_sql|sqlite3\.connect")


def sql_outside_the_store(source: str) -> list[str]:
    """Where ``source`` builds or runs SQL, or opens a session: ``line: what``."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = [f"{n.lineno}: {what}" for n, what in _findings(tree, docstrings)]
    for number, line in enumerate(source.splitlines(), 1):
        if _RAW_TEXT.search(line.split("#", 1)[0]):
            found.append(f"{number}: {line.strip()}")
    return sorted(set(found), key=lambda f: int(f.split(":")[0]))


def _findings(tree: ast.AST, docstrings: set[int]) -> Iterator[tuple[ast.AST, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
            "sqlalchemy",
            "sqlite3",
        ):
            if node.module == "sqlite3" or any(a.name in _BUILDERS for a in node.names):
                names = ", ".join(a.name for a in node.names)
                yield node, f"from {node.module} import {names}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("sqlalchemy", "sqlite3"):
                    yield node, f"import {alias.name}"
        elif isinstance(node, ast.Attribute) and node.attr in _RUNNERS:
            yield node, f".{node.attr}(…)"
        elif isinstance(node, ast.AsyncWith | ast.With):
            for item in node.items:
                call = item.context_expr
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr in _SESSION_OPENERS
                    and item.optional_vars is not None
                    and "session" in ast.unparse(item.optional_vars).lower()
                ):
                    yield node, f"a session: {ast.unparse(item)}"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and _RAW_SQL.search(node.value)
        ):
            yield node, f"SQL text {node.value[:40]!r}"


def _engine_modules_outside_the_store() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*.py") if STORE not in p.parents)


@pytest.mark.parametrize(
    "path", _engine_modules_outside_the_store(), ids=lambda p: str(p.relative_to(REPO))
)
def test_sql_only_in_store(path: Path) -> None:
    """The engine reaches the database through the store (``engine/space``) alone;
    ``connectors/`` is not the store (the SQL connector writes its own target)."""
    found = sql_outside_the_store(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(REPO)} builds SQL or opens sessions:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "from sqlalchemy import select\nrows = select(Row)\n",
        "import sqlite3\n",
        "from sqlalchemy.ext.asyncio import AsyncSession\n",
        "async def f(space):\n    async with space.write() as session:\n        pass\n",
        "async def f(s):\n    await s.execute(x)\n",
        "async def f(c):\n    await c.exec_driver_sql(x)\n",
        'QUERY = "SELECT id FROM objects WHERE id = ?"\n',
        'x = f"DELETE FROM {table}"\n',
        'db.run("PRAGMA journal_mode")\n',
    ],
)
def test_the_check_finds_sql(source: str) -> None:
    assert sql_outside_the_store(source)


def test_the_check_leaves_the_rest_alone() -> None:
    source = '''
"""Select from the list. PRAGMA in a docstring is prose."""
from sqlalchemy import ColumnElement
from aiohttp import web

def routes() -> list:
    counts.update(seen=1)
    return [web.delete("/Users/{id}", handler)]

async def g(client):
    async with client.get(url) as response:
        return response
'''
    assert sql_outside_the_store(source) == []


@pytest.mark.parametrize(
    "path",
    sorted(p for root in ("engine", "connectors") for p in (REPO / root).rglob("*.py")),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_no_module_is_too_long(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)}: {lines} lines; split it by noun"
