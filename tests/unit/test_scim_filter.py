"""The SCIM filter parser: exact ASTs for well-formed filters, 400 for the rest."""

from __future__ import annotations

import pytest
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.scim.filter import (
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    Present,
    ValuePath,
    parse_filter,
)

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ECMA_USER = "urn:ietf:params:scim:schemas:extension:ECMA2Host:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def attr(name: str, sub: str | None = None, urn: str | None = None) -> AttrPath:
    return AttrPath(urn, name, sub)


def eq(name: str, value: str | int | float | bool | None) -> Compare:
    return Compare(attr(name), "eq", value)


A1, B2, C3 = eq("a", 1), eq("b", 2), eq("c", 3)


def check(text: str, expected: Filter) -> None:
    parsed = parse_filter(text)
    assert parsed == expected
    # == alone would let 1 stand for True and 1.0 for 1.
    if isinstance(expected, Compare):
        assert isinstance(parsed, Compare)
        assert type(parsed.value) is type(expected.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "bjensen"', Compare(attr("userName"), "eq", "bjensen")),
        ('userName ne "bjensen"', Compare(attr("userName"), "ne", "bjensen")),
        ('userName co "jen"', Compare(attr("userName"), "co", "jen")),
        ('userName sw "bj"', Compare(attr("userName"), "sw", "bj")),
        ('userName ew "sen"', Compare(attr("userName"), "ew", "sen")),
        ("loginCount gt 5", Compare(attr("loginCount"), "gt", 5)),
        ("loginCount ge 5", Compare(attr("loginCount"), "ge", 5)),
        ("loginCount lt 5", Compare(attr("loginCount"), "lt", 5)),
        ("loginCount le 5", Compare(attr("loginCount"), "le", 5)),
        ("title pr", Present(attr("title"))),
    ],
)
def test_each_operator(text: str, expected: Filter) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("active eq true", eq("active", True)),
        ("active eq false", eq("active", False)),
        ("manager eq null", eq("manager", None)),
        ("active eq TRUE", eq("active", True)),
        ("n eq 0", eq("n", 0)),
        ("n eq -42", eq("n", -42)),
        ("n eq 1.0", eq("n", 1.0)),
        ("n eq -0.25", eq("n", -0.25)),
        ("n eq 1e3", eq("n", 1000.0)),
        ("n eq 2.5E-1", eq("n", 0.25)),
        ('s eq ""', eq("s", "")),
        ('s eq "true"', eq("s", "true")),
        ('s eq "a b  c"', eq("s", "a b  c")),
    ],
)
def test_values(text: str, expected: Filter) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('s eq "say \\"hi\\""', eq("s", 'say "hi"')),
        ('s eq "back\\\\slash"', eq("s", "back\\slash")),
        ('s eq "Ren\\u00e9e"', eq("s", "Renée")),
        ('s eq "\\u00C9"', eq("s", "É")),
        ('s eq "\\ud83d\\ude00"', eq("s", "\U0001f600")),
        ('s eq "a\\/b\\tc\\nd"', eq("s", "a/b\tc\nd")),
        ('s eq "Renée"', eq("s", "Renée")),
        ('s eq "a)b]c(d[e"', eq("s", "a)b]c(d[e")),
        ('s eq "x and y or not (z)"', eq("s", "x and y or not (z)")),
    ],
)
def test_string_escapes(text: str, expected: Filter) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a EQ 1", A1),
        ("a Eq 1", A1),
        ("title PR", Present(attr("title"))),
        ("a eq 1 AND b eq 2", And(A1, B2)),
        ("a eq 1 Or b eq 2", Or(A1, B2)),
        ("NOT (a eq 1)", Not(A1)),
        ('emails[type EQ "work"]', ValuePath(attr("emails"), eq("type", "work"))),
        ('UserName eq "x"', eq("UserName", "x")),
    ],
)
def test_keywords_are_case_insensitive(text: str, expected: Filter) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a eq 1 or b eq 2 and c eq 3", Or(A1, And(B2, C3))),
        ("a eq 1 and b eq 2 or c eq 3", Or(And(A1, B2), C3)),
        ("a eq 1 and b eq 2 and c eq 3", And(And(A1, B2), C3)),
        ("a eq 1 or b eq 2 or c eq 3", Or(Or(A1, B2), C3)),
        ("(a eq 1 or b eq 2) and c eq 3", And(Or(A1, B2), C3)),
        ("a eq 1 and (b eq 2 or c eq 3)", And(A1, Or(B2, C3))),
        ("((a eq 1))", A1),
        ("not (a eq 1) and b eq 2", And(Not(A1), B2)),
        ("not (a eq 1) or b eq 2 and c eq 3", Or(Not(A1), And(B2, C3))),
        ("not (a eq 1 or b eq 2)", Not(Or(A1, B2))),
        ("not (not (a eq 1))", Not(Not(A1))),
        ("not(a eq 1)", Not(A1)),
        ("a eq 1 and not (b eq 2)", And(A1, Not(B2))),
    ],
)
def test_precedence_and_grouping(text: str, expected: Filter) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('emails[type eq "work"]', ValuePath(attr("emails"), eq("type", "work"))),
        (
            'emails[type eq "work" and value co "@example.com"]',
            ValuePath(
                attr("emails"),
                And(eq("type", "work"), Compare(attr("value"), "co", "@example.com")),
            ),
        ),
        (
            'emails[not (type eq "home") or primary eq true]',
            ValuePath(attr("emails"), Or(Not(eq("type", "home")), eq("primary", True))),
        ),
        ("emails[value pr]", ValuePath(attr("emails"), Present(attr("value")))),
        (
            'userType eq "Employee" and emails[type eq "work"]',
            And(eq("userType", "Employee"), ValuePath(attr("emails"), eq("type", "work"))),
        ),
        (
            f'{CORE_USER}:emails[type eq "work"]',
            ValuePath(attr("emails", urn=CORE_USER), eq("type", "work")),
        ),
        ('emails [ type eq "work" ]', ValuePath(attr("emails"), eq("type", "work"))),
    ],
)
def test_value_paths(text: str, expected: Filter) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name.givenName eq "Barbara"', Compare(attr("name", "givenName"), "eq", "Barbara")),
        (f'{CORE_USER}:userName eq "x"', Compare(attr("userName", urn=CORE_USER), "eq", "x")),
        (
            f'{CORE_USER}:name.givenName eq "Barbara"',
            Compare(attr("name", "givenName", CORE_USER), "eq", "Barbara"),
        ),
        (
            f"{ENTERPRISE_USER}:manager.value pr",
            Present(attr("manager", "value", ENTERPRISE_USER)),
        ),
        (
            f'{ENTERPRISE_USER}:employeeNumber eq "701984"',
            Compare(attr("employeeNumber", urn=ENTERPRISE_USER), "eq", "701984"),
        ),
        (
            f'{ECMA_USER}:AzureObjectID eq "x"',
            Compare(attr("AzureObjectID", urn=ECMA_USER), "eq", "x"),
        ),
        (
            'urn:example:My.Schema:1.5:thing.part eq "x"',
            Compare(attr("thing", "part", "urn:example:My.Schema:1.5"), "eq", "x"),
        ),
    ],
)
def test_attribute_paths(text: str, expected: Filter) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '-dn- eq "CN=Ann,OU=People,DC=example,DC=com"',
            eq("-dn-", "CN=Ann,OU=People,DC=example,DC=com"),
        ),
        ("export_password pr", Present(attr("export_password"))),
        ('--x_y-z9 eq "v"', eq("--x_y-z9", "v")),
        (f'{ECMA_USER}:-dn- eq "x"', Compare(attr("-dn-", urn=ECMA_USER), "eq", "x")),
        ('not eq "x"', eq("not", "x")),
        ('and eq "x" or or eq "y"', Or(eq("and", "x"), eq("or", "y"))),
        ("pr pr", Present(attr("pr"))),
    ],
)
def test_ecma_and_keyword_like_names(text: str, expected: Filter) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'PLACEHOLDER eq "8646d011-1693-4cd3-9ee6-0d7482ca2219"',
            eq("PLACEHOLDER", "8646d011-1693-4cd3-9ee6-0d7482ca2219"),
        ),
        (
            f'{ECMA_USER}:AzureObjectID eq "de4841f1-cb92-48e5-9056-29a36a0653c2"',
            Compare(
                attr("AzureObjectID", urn=ECMA_USER), "eq", "de4841f1-cb92-48e5-9056-29a36a0653c2"
            ),
        ),
        (
            'userName eq "a" and displayName eq "b"',
            And(eq("userName", "a"), eq("displayName", "b")),
        ),
        ('  userName eq "a"  ', eq("userName", "a")),
        ('userName   eq\t"a"\n', eq("userName", "a")),
        (
            '(userName eq "a")and(displayName eq "b")',
            And(eq("userName", "a"), eq("displayName", "b")),
        ),
    ],
)
def test_entra_shapes_and_whitespace(text: str, expected: Filter) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "userName",
        "userName eq",
        'userName xx "a"',
        'userName eq "a" extra',
        'userName eq "a" and',
        'or userName eq "a"',
        'userName eq "a" and or b eq 1',
        'userName eq "unterminated',
        'userName eq "bad \\q escape"',
        'userName eq "bad \\u12 escape"',
        'userName eq "lone \\ud800 surrogate"',
        "userName eq bare",
        "userName eq 01",
        "userName eq 1.",
        "userName eq .5",
        "userName eq +1",
        "userName eq 1e999",
        "userName eq " + "9" * 5000,
        "userName eq True1",
        'userName eq "a" "b"',
        '"userName" eq "a"',
        "(a eq 1",
        "a eq 1)",
        "()",
        "not a eq 1",
        "not",
        "not ()",
        "a eq 1 and not",
        'emails[type eq "work"',
        'emails[type eq "work")',
        'emails]type eq "work"[',
        "emails[]",
        'emails[type eq "work"].value',
        "emails[x[y eq 1]]",
        "a pr 1",
        "a gt true",
        "a lt null",
        "a co false",
        "a.b.c eq 1",
        "a. eq 1",
        ".a eq 1",
        "1a eq 1",
        "-1 eq 1",
        "- eq 1",
        "a$ eq 1",
        "a:b eq 1",
        "urn: eq 1",
        f"{CORE_USER}: eq 1",
        f"{CORE_USER}:2fa eq 1",
        "(" * 100 + "a eq 1" + ")" * 100,
    ],
)
def test_malformed_filters_are_invalid_filter(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter(text)
    assert caught.value.status == 400
    assert caught.value.scim_type == "invalidFilter"
    assert "position" in caught.value.detail


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ('userName xx "a"', 9),
        ('userName eq "a" extra', 16),
        ("(a eq 1", 7),
        ('a eq "x\\q"', 7),
    ],
)
def test_errors_point_at_the_offending_character(text: str, position: int) -> None:
    with pytest.raises(ScimError, match=rf"at position {position}$"):
        parse_filter(text)


def test_attr_path_renders_back_to_its_text() -> None:
    text = f"{CORE_USER}:name.givenName"
    parsed = parse_filter(f"{text} pr")
    assert isinstance(parsed, Present)
    assert str(parsed.attr) == text
    assert str(AttrPath(None, "userName", None)) == "userName"
