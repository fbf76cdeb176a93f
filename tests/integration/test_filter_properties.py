"""Property tests: random filters give in SQL (on SQLite and on PostgreSQL) what a plain
Python evaluation gives, and random filters and PATCH bodies never make the app answer
500."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from ecmahost.connectors.base import DataType, Value
from ecmahost.connectors.memory.connector import MemoryConnector, MemorySettings
from ecmahost.engine.config import Deprovision
from ecmahost.engine.scim.filter import parse_filter
from ecmahost.engine.scim.resource import EXTENSION, ResourceMapper
from ecmahost.engine.space.search import filter_clause
from ecmahost.engine.space.store import ConnectorSpace, Staging
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXT, Scim

NAME = "Mem"
WORDS = ["", "a", "A", "ab", "Zoë", "ZOË", "b;c", 'q"t', "x_y", "50%", "ß", "SS", "日本", " sp "]
STRINGS = ["DisplayName", "UserName", "Title", "Email"]
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _people() -> dict[str, dict[str, Value]]:
    """A fixed population mixing case, absence, non-ASCII and LIKE wildcards."""
    people: dict[str, dict[str, Value]] = {}
    for i in range(40):
        person: dict[str, Value] = {"AzureObjectID": f"id-{i:02d}"}
        for n, name in enumerate(STRINGS):
            word = WORDS[(i * (n + 3)) % len(WORDS)]
            if word:
                person[name] = word + ("" if i % 3 else f"-{i}")
        if i % 4:
            person["IsActive"] = i % 2 == 0
        people[person["AzureObjectID"]] = person  # type: ignore[index]
    return people


PEOPLE = _people()


# -- the reference: a straightforward evaluation in Python --------------------------


def _fold(value: Value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value).casefold()


def _compare(op: str, value: Value | None, wanted: Any, data_type: DataType) -> bool:
    if wanted is None:  # eq null: absent; ne null: present
        return (value is None) == (op == "eq")
    if data_type is DataType.BOOLEAN:
        present = value is not None and value == wanted
        return present if op == "eq" else not present if op == "ne" else False
    if op == "ne":
        return value is None or _fold(value) != _fold(wanted)
    if value is None:
        return False
    have, want = _fold(value), _fold(wanted)
    return {
        "eq": have == want,
        "co": want in have,
        "sw": have.startswith(want),
        "ew": have.endswith(want),
        "gt": have > want,
        "ge": have >= want,
        "lt": have < want,
        "le": have <= want,
    }[op]


def _evaluate(node: tuple[Any, ...], person: Mapping[str, Value]) -> bool:
    kind = node[0]
    if kind == "and":
        return _evaluate(node[1], person) and _evaluate(node[2], person)
    if kind == "or":
        return _evaluate(node[1], person) or _evaluate(node[2], person)
    if kind == "not":
        return not _evaluate(node[1], person)
    if kind == "unknown":
        return False
    _, name, op, wanted = node
    value = person.get(name)
    if op == "pr":
        return value is not None
    return _compare(op, value, wanted, DataType.BOOLEAN if name == "IsActive" else DataType.STRING)


# -- random filters, as ASTs and as text --------------------------------------------


def _path(name: str, style: int) -> str:
    return [name, name.lower(), f"{EXTENSION}:{name}", name.upper()][style]


string_compare = st.builds(
    lambda name, op, word, style: (
        ("cmp", name, op, word),
        f"{_path(name, style)} {op} {json.dumps(word)}",
    ),
    st.sampled_from(STRINGS),
    st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]),
    st.sampled_from([w for w in WORDS if w] + ["zoë-3", "b;c-9"]),
    st.integers(0, 3),
)
boolean_compare = st.builds(
    lambda op, value: (("cmp", "IsActive", op, value), f"IsActive {op} {json.dumps(value)}"),
    st.sampled_from(["eq", "ne"]),
    st.sampled_from([True, False, None]),
)
present = st.builds(
    lambda name: (("cmp", name, "pr", None), f"{name} pr"), st.sampled_from([*STRINGS, "IsActive"])
)
unknown = st.just((("unknown",), 'PLACEHOLDER eq "8646d011"'))
leaf = st.one_of(string_compare, boolean_compare, present, unknown)


def _combine(children: st.SearchStrategy[tuple[Any, str]]) -> st.SearchStrategy[tuple[Any, str]]:
    binary = st.builds(
        lambda op, a, b: ((op, a[0], b[0]), f"({a[1]}) {op} ({b[1]})"),
        st.sampled_from(["and", "or"]),
        children,
        children,
    )
    negated = st.builds(lambda a: (("not", a[0]), f"not ({a[1]})"), children)
    return st.one_of(binary, negated)


filters = st.recursive(leaf, _combine, max_leaves=6)


@pytest.fixture
async def mapper(space: ConnectorSpace, tmp_path: Path) -> ResourceMapper:
    """The mapper of the memory connector's schema, ``PEOPLE`` stored in the space."""
    for anchor, person in PEOPLE.items():
        await space.create(NAME, anchor, Staging(person, visible=True, export=None))
    schema = await MemoryConnector(NAME, MemorySettings(), tmp_path).schema()
    return ResourceMapper(schema, Deprovision(disable_attribute="IsActive"))


@SETTINGS
@given(case=filters)
async def test_sql_matches_python(
    case: tuple[Any, str], space: ConnectorSpace, mapper: ResourceMapper
) -> None:
    tree, text = case
    where = filter_clause(mapper, NAME, parse_filter(text))
    total, found = await space.query(NAME, where, 1, 1000)

    expected = sorted(a for a, person in PEOPLE.items() if _evaluate(tree, person))
    assert sorted(o.anchor for o in found) == expected, text
    assert total == len(expected)


# -- never a 500 ----------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.sampled_from(WORDS)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
paths = st.one_of(
    st.sampled_from(
        [
            *STRINGS,
            "IsActive",
            "active",
            "nickName",
            'emails[type eq "work"].value',
            EXT,
            "",
            f"{EXT}:Title",
            f"{EXT}:AzureObjectID",
            f"{EXT}:Nope",
            "urn:x:y:z",
            "name.givenName",
        ]
    ),
    st.text(max_size=12),
)
operations = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Replace", "REMOVE", "remove", "bogus", ""])},
    optional={"path": st.one_of(st.none(), paths), "value": json_values},
)
patch_bodies = st.one_of(
    st.fixed_dictionaries({"Operations": st.lists(operations, max_size=4)}),
    json_values,
)


@SETTINGS
@given(body=patch_bodies, text=st.one_of(st.text(max_size=30), filters.map(lambda c: c[1])))
async def test_the_app_never_answers_500(
    body: Any, text: str, make_scim: Callable[..., Any], scim_once: dict[str, Scim]
) -> None:
    if "scim" not in scim_once:
        scim_once["scim"] = await make_scim(seed={"a": {"AzureObjectID": "a", "Title": "t"}})
    scim = scim_once["scim"]
    _, found = await scim.call("GET", '/Users?filter=AzureObjectID+eq+"a"')
    user_id = found["Resources"][0]["id"]

    status, answer = await scim.call("PATCH", f"/Users/{user_id}", body)
    assert status in (200, 400, 415), answer  # 415: no body at all
    response = await scim.client.get(
        f"{scim.base}/Users", params={"filter": text}, headers=scim.headers()
    )
    assert response.status in (200, 400), await response.text()
    assert response.content_type == "application/scim+json"


@pytest.fixture
def scim_once() -> dict[str, Scim]:
    """One host for every example of a property test (starting one per example is slow)."""
    return {}
