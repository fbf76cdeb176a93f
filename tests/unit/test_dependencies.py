"""Dependencies run one way, read from the code's imports (module sizes and SQL: test_layout)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
CONTRACT = {
    "ecmahost.connectors.base",
    "ecmahost.connectors.direction",
    "ecmahost.connectors.exceptions",
    "ecmahost.connectors.secrets",
}
BUILT_IN = ("csv", "ldap", "memory", "script", "sql")


def _modules(folder: str) -> list[Path]:
    return [p for p in (REPO / folder).rglob("*.py") if "examples" not in p.parts]


def _imports(path: Path) -> set[str]:
    """The ecmahost modules ``path`` imports (``from a import b`` counts as a.b too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("ecmahost.")}


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", _modules("connectors"), ids=_rel)
def test_connectors_import_only_the_contract_and_their_own_package(path: Path) -> None:
    parts = path.relative_to(REPO / "connectors").parts
    own = f"ecmahost.connectors.{parts[0]}" if len(parts) > 1 else None
    allowed = [*CONTRACT, *([own] if own else [])]
    wrong = {
        name
        for name in _imports(path)
        if name != "ecmahost.connectors"
        and not any(name == a or name.startswith(a + ".") for a in allowed)
    }
    assert not wrong, f"{_rel(path)} imports {sorted(wrong)}"


@pytest.mark.parametrize("path", _modules("engine"), ids=_rel)
def test_the_engine_reaches_connectors_only_through_the_contract(path: Path) -> None:
    built_in = tuple(f"ecmahost.connectors.{name}" for name in BUILT_IN)
    wrong = {n for n in _imports(path) if n.startswith(built_in)}
    assert not wrong, f"{_rel(path)} imports {sorted(wrong)}: use the registry"
