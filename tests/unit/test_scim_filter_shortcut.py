"""The one-comparison shortcut of the filter parser reads every text exactly as the
full parser does: the same tree, or the same refusal."""

from __future__ import annotations

import pytest
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.scim import filter as scim_filter
from ecmahost.engine.scim.filter import AttrPath, Compare, parse_filter
from hypothesis import given, settings
from hypothesis import strategies as st


def _full(text: str) -> object:
    """What the full parser makes of ``text``: its tree, or its error's detail."""
    try:
        return scim_filter._Parser(text).parse()
    except ScimError as exc:
        return ("error", exc.status, exc.detail, exc.scim_type)


def _public(text: str) -> object:
    try:
        return parse_filter(text)
    except ScimError as exc:
        return ("error", exc.status, exc.detail, exc.scim_type)


def test_entra_match_takes_the_shortcut() -> None:
    text = 'AzureObjectID eq "4f1c-77"'
    assert scim_filter._single_comparison(text) == Compare(
        AttrPath(None, "AzureObjectID"), "eq", "4f1c-77"
    )
    assert parse_filter(text) == _full(text)


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "a"',
        ' userName  EQ"a" ',
        'urn:ietf:params:scim:schemas:extension:ECMA2Host:2.0:User:Title sw "Lead"',
        'emails.value co ""',
        'not eq "x"',
        'and eq "x"',
        'userName pr "x"',
        'userName xx "x"',
        'userName eq "a\\"b"',
        'userName eq "tab\there"',
        'userName eq "\\ud800"',
        'userName eq "\ud800"',
        'userName eq "é€😀"',
        '1bad eq "x"',
        ':x eq "x"',
        '1:x eq "x"',
        'userName.sub.more eq "x"',
        'userName eq "x" and title eq "y"',
        'userName eq "x"]',
        'userName\u00a0eq "x"',
        "userName eq 'x'",
        'userName eq "x',
    ],
)
def test_shortcut_agrees_with_the_parser(text: str) -> None:
    assert _public(text) == _full(text)


_PIECES = st.sampled_from(
    [
        " ",
        "\t",
        "\n",
        '"',
        "\\",
        "(",
        ")",
        "[",
        "]",
        ":",
        ".",
        "-",
        "eq",
        "Eq",
        "pr",
        "co",
        "and",
        "not",
        "userName",
        "urn:a:b",
        "x",
        "1",
        "\x01",
        "\ud800",
        "é",
        "\u00a0",
    ]
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_shortcut_agrees_on_arbitrary_texts(text: str) -> None:
    assert _public(text) == _full(text)


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(["userName", "a.b", "urn:x:y:Title", "-dn-", "x1"]),
    st.sampled_from(["eq", "NE", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "zz"]),
    st.text(max_size=20),
)
def test_shortcut_agrees_on_comparisons(path: str, op: str, value: str) -> None:
    text = f'{path} {op} "{value}"'
    assert _public(text) == _full(text)
