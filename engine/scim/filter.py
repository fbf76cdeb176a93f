"""The SCIM filter language (RFC 7644 §3.4.2.2), parsed into a small frozen AST.

Only parsing lives here; turning the AST into a query is the translator's job.
Positions in error messages are 0-based character offsets into the filter text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

from ecmahost.engine.exceptions import ScimError

__all__ = [
    "COMPARE_OPS",
    "MAX_TERMS",
    "And",
    "AttrPath",
    "CompValue",
    "Compare",
    "Filter",
    "Not",
    "Or",
    "Present",
    "ValuePath",
    "parse_filter",
]

CompValue: TypeAlias = str | int | float | bool | None

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})

# Operators that order or match substrings make no sense against true/false/null
# (RFC 7644 §3.4.2.2 demands invalidFilter for gt/ge/lt/le on booleans).
_NEED_STRING_OR_NUMBER = frozenset({"co", "sw", "ew", "gt", "ge", "lt", "le"})

# RFC ATTRNAME, widened for ECMA pseudo-attributes such as "-dn-": leading dashes
# are allowed as long as a letter follows, so "-1" is never taken for a name.
_ATTR_NAME = r"-*[A-Za-z][A-Za-z0-9_-]*"
_NAME_RE = re.compile(rf"(?P<name>{_ATTR_NAME})(?:\.(?P<sub>{_ATTR_NAME}))?")
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?P<frac>\.[0-9]+)?(?P<exp>[eE][+-]?[0-9]+)?")
_LITERALS: dict[str, CompValue] = {"true": True, "false": False, "null": None}

_PUNCTUATION = "()[]"
_WHITESPACE = " \t\r\n"
# Deep nesting would otherwise surface as a RecursionError (a 500) instead of a 400.
_MAX_DEPTH = 64
MAX_TERMS = 100
"""Most comparisons one filter holds: each costs a subquery, and Entra sends one."""
# Tokens a filter of MAX_TERMS terms can need (attribute, operator, value, a
# keyword and parentheses each); tokenizing stops past it, before parsing costs more.
_MAX_TOKENS = MAX_TERMS * 8
_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``[urn ":"] name ["." sub]``; ``urn`` is set only when the path was qualified."""

    urn: str | None
    name: str
    sub: str | None = None

    def __str__(self) -> str:
        path = f"{self.name}.{self.sub}" if self.sub else self.name
        return f"{self.urn}:{path}" if self.urn else path


@dataclass(frozen=True, slots=True)
class Compare:
    """``attr op value``; ``op`` is lower-case, one of :data:`COMPARE_OPS`."""

    attr: AttrPath
    op: str
    value: CompValue


@dataclass(frozen=True, slots=True)
class Present:
    """``attr pr``."""

    attr: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Not:
    expr: Filter


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``attr[filter]``; paths inside ``filter`` are relative to ``attr``."""

    attr: AttrPath
    filter: Filter


Filter: TypeAlias = Compare | Present | And | Or | Not | ValuePath


def parse_filter(text: str) -> Filter:
    """Parse a SCIM filter; raise ``ScimError(400, ..., "invalidFilter")`` if malformed.

    Keywords and operators are case-insensitive; ``not`` binds tighter than
    ``and``, which binds tighter than ``or``; ``and``/``or`` associate left.
    """
    return _single_comparison(text) or _Parser(text).parse()


_SIMPLE_RE = re.compile(
    r'[ \t\r\n]*(?P<path>[^ \t\r\n()\[\]"]+)[ \t\r\n]+(?P<op>[A-Za-z]{2})'
    r'[ \t\r\n]*"(?P<value>[^"\\\x00-\x1f\ud800-\udfff]*)"[ \t\r\n]*'
)
"""``path op "plain string"``: the shape of Entra's match before every create. The
string has no escapes, control characters nor surrogates, so it is its own JSON value."""


def _single_comparison(text: str) -> Compare | None:
    """The one comparison ``text`` is when it has the :data:`_SIMPLE_RE` shape, as the
    parser would build it, without its tokens (a fifth of a match's own CPU); None for
    anything else, which the parser then reads (and refuses where it must)."""
    match = _SIMPLE_RE.fullmatch(text)
    op = match["op"].lower() if match else ""
    if match is None or op not in COMPARE_OPS:
        return None
    urn, _, rest = match["path"].rpartition(":")
    name = _NAME_RE.fullmatch(rest)
    if name is None or (urn and not _URI_RE.fullmatch(urn)):
        return None
    return Compare(AttrPath(urn or None, name["name"], name["sub"]), op, match["value"])


def _invalid(message: str, pos: int) -> ScimError:
    return ScimError(400, f"Invalid filter: {message} at position {pos}", "invalidFilter")


# --- tokens ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # one of "()[]", "string", "word", "end"
    text: str
    pos: int
    value: str = ""  # decoded content of a string token

    def describe(self) -> str:
        return "end of filter" if self.kind == "end" else repr(self.text)


def _tokenize(text: str) -> Iterator[_Token]:
    pos = 0
    count = 0
    while pos < len(text):
        char = text[pos]
        if char in _WHITESPACE:
            pos += 1
            continue
        count += 1
        if count > _MAX_TOKENS:
            raise _invalid(f"more than {MAX_TERMS} terms", pos)
        if char in _PUNCTUATION:
            token = _Token(char, char, pos)
        elif char == '"':
            token = _read_string(text, pos)
        else:
            token = _read_word(text, pos)
        yield token
        pos += len(token.text)
    yield _Token("end", "", len(text))


def _read_word(text: str, start: int) -> _Token:
    end = start
    while end < len(text) and text[end] not in _WHITESPACE + _PUNCTUATION + '"':
        end += 1
    return _Token("word", text[start:end], start)


def _read_string(text: str, start: int) -> _Token:
    end = start + 1
    while end < len(text) and text[end] != '"':
        end += 2 if text[end] == "\\" else 1
    if end >= len(text):
        raise _invalid("unterminated string", start)
    raw = text[start : end + 1]
    return _Token("string", raw, start, _decode_string(raw, start))


def _decode_string(raw: str, start: int) -> str:
    # Filter strings are JSON strings, so JSON's own decoder handles the escapes.
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _invalid(f"bad string ({exc.msg})", start + exc.pos) from exc
    # A lone surrogate decodes fine but cannot be stored or sent back as UTF-8.
    if any(0xD800 <= ord(char) <= 0xDFFF for char in value):
        raise _invalid("string contains an unpaired surrogate escape", start)
    return str(value)


# --- grammar --------------------------------------------------------------------


def _parse_attr_path(token: _Token) -> AttrPath:
    urn, _, rest = token.text.rpartition(":")
    match = _NAME_RE.fullmatch(rest)
    if match is None or (urn and not _URI_RE.fullmatch(urn)):
        raise _invalid(f"expected an attribute path, found {token.describe()}", token.pos)
    return AttrPath(urn or None, match["name"], match["sub"])


def _parse_literal(token: _Token) -> CompValue:
    if token.kind == "string":
        return token.value
    if token.kind == "word":
        lowered = token.text.lower()
        if lowered in _LITERALS:
            return _LITERALS[lowered]
        number = _NUMBER_RE.fullmatch(token.text)
        if number is not None:
            return _parse_number(token, is_float=bool(number["frac"] or number["exp"]))
    raise _invalid(f"expected a value, found {token.describe()}", token.pos)


def _parse_number(token: _Token, is_float: bool) -> int | float:
    # int() refuses over ~4300 digits and float() overflows to inf; both are
    # client mistakes, so they must become a 400 rather than escape as a 500.
    try:
        value = float(token.text) if is_float else int(token.text)
    except ValueError as exc:
        raise _invalid(f"number {token.text[:20]!r} is too long", token.pos) from exc
    if not math.isfinite(value) or (isinstance(value, int) and value not in _INT64):
        raise _invalid(f"number {token.text[:20]!r} is out of range", token.pos)
    return value


class _Parser:
    """Recursive descent over the token list; one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self._tokens = list(_tokenize(text))
        self._index = 0
        self._depth = 0
        self._terms = 0

    def parse(self) -> Filter:
        if self._peek().kind == "end":
            raise _invalid("filter is empty", 0)
        result = self._or_expr(in_value_path=False)
        self._expect("end")
        return result

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        if token.kind != "end":
            self._index += 1
        return token

    def _is_keyword(self, token: _Token, keyword: str) -> bool:
        return token.kind == "word" and token.text.lower() == keyword

    def _expect(self, kind: str) -> None:
        """Consume the token that must follow a complete expression."""
        token = self._next()
        if token.kind != kind:
            closing = "end of filter" if kind == "end" else repr(kind)
            expected = f"'and', 'or' or {closing}"
            raise _invalid(f"expected {expected}, found {token.describe()}", token.pos)

    def _or_expr(self, in_value_path: bool) -> Filter:
        left = self._and_expr(in_value_path)
        while self._is_keyword(self._peek(), "or"):
            self._next()
            left = Or(left, self._and_expr(in_value_path))
        return left

    def _and_expr(self, in_value_path: bool) -> Filter:
        left = self._unary(in_value_path)
        while self._is_keyword(self._peek(), "and"):
            self._next()
            left = And(left, self._unary(in_value_path))
        return left

    def _unary(self, in_value_path: bool) -> Filter:
        token = self._peek()
        # "not" is only a keyword before "(" (RFC 7644 requires the parentheses),
        # which leaves "not" free as an attribute name.
        following = self._tokens[self._index + 1] if token.kind != "end" else token
        if self._is_keyword(token, "not") and following.kind == "(":
            self._next()
            return Not(self._group(in_value_path))
        if token.kind == "(":
            return self._group(in_value_path)
        return self._attr_expr(in_value_path)

    def _group(self, in_value_path: bool) -> Filter:
        opening = self._next()  # the "(" itself
        return self._nested(opening, ")", in_value_path)

    def _nested(self, opening: _Token, closing: str, in_value_path: bool) -> Filter:
        if self._depth >= _MAX_DEPTH:
            raise _invalid(f"nesting deeper than {_MAX_DEPTH} levels", opening.pos)
        self._depth += 1
        inner = self._or_expr(in_value_path)
        self._expect(closing)
        self._depth -= 1
        return inner

    def _attr_expr(self, in_value_path: bool) -> Filter:
        self._terms += 1
        if self._terms > MAX_TERMS:
            raise _invalid(f"more than {MAX_TERMS} terms", self._peek().pos)
        attr = _parse_attr_path(self._next())
        token = self._next()
        if token.kind == "[":
            if in_value_path:
                raise _invalid("value paths cannot be nested", token.pos)
            return ValuePath(attr, self._nested(token, "]", in_value_path=True))
        op = token.text.lower() if token.kind == "word" else ""
        if op == "pr":
            return Present(attr)
        if op not in COMPARE_OPS:
            message = f"expected an operator after {str(attr)!r}"
            raise _invalid(f"{message}, found {token.describe()}", token.pos)
        return Compare(attr, op, self._comparison_value(op))

    def _comparison_value(self, op: str) -> CompValue:
        token = self._next()
        value = _parse_literal(token)
        if op in _NEED_STRING_OR_NUMBER and (value is None or isinstance(value, bool)):
            raise _invalid(f"operator {op!r} needs a string or number", token.pos)
        return value
