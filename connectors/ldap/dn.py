"""Distinguished names (RFC 4514) parsed into RDNs, and the rule that keeps a DN a
client sends below ``base_dn``.

Written here rather than taken from ldap3: its ``parse_dn`` keeps values escaped
(``a\\,b`` and ``a\\2Cb`` compare different), refuses the valid ``#`` hex form and an
escaped trailing space, and a containment test built on it dropped the ``+`` between
the parts of a multi-valued RDN, so ``uid=x+ou=people,dc=example,dc=org`` passed for
a DN below ``ou=people,dc=example,dc=org``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecmahost.connectors.ldap.escape import escape_dn_value

__all__ = ["Ava", "Dn", "DnRefusedError", "child_dn", "is_within", "parse_dn", "render"]

_HEX = frozenset("0123456789abcdefABCDEF")
_SEPARATORS = ",+"


class DnRefusedError(ValueError):
    """A DN a client gave breaks a containment rule; the message names the rule."""


@dataclass(frozen=True, slots=True)
class Ava:
    """One ``type=value`` of an RDN: the type as written, the value unescaped."""

    type: str
    value: str
    hex_form: bool = False
    """Whether the value was written as ``#`` and BER hex (kept as that text)."""

    @property
    def key(self) -> tuple[str, str]:
        """What compares: the type without case, the value without case or outer
        spaces, as the directory's usual (caseIgnore) matching rules do."""
        return self.type.lower(), " ".join(self.value.split()).casefold()

    def __str__(self) -> str:
        value = self.value if self.hex_form else escape_dn_value(self.value)
        return f"{self.type}={value}"


Rdn = tuple[Ava, ...]
Dn = tuple[Rdn, ...]
"""A DN's RDNs, the entry's own first; each RDN one or more AVAs."""


def parse_dn(text: str) -> Dn:
    """``text`` as RDNs; ValueError for text that is not a DN. Spaces around the
    separators are allowed (RFC 2253 readers write them)."""
    if not text.strip():
        return ()
    rdns: list[Rdn] = []
    avas: list[Ava] = []
    position = 0
    while True:
        ava, position = _ava(text, position)
        avas.append(ava)
        if position == len(text):
            rdns.append(tuple(avas))
            return tuple(rdns)
        if text[position] == ",":
            rdns.append(tuple(avas))
            avas = []
        position += 1


def render(dn: Dn) -> str:
    """The DN as text, every value escaped as RFC 4514 requires."""
    return ",".join("+".join(str(ava) for ava in rdn) for rdn in dn)


def is_within(dn: Dn, base: Dn) -> bool:
    """Whether ``dn`` is ``base`` or below it, RDN by RDN (all AVAs of each)."""
    if len(dn) < len(base):
        return False
    tail = dn[len(dn) - len(base) :]
    return all(_rdn_key(a) == _rdn_key(b) for a, b in zip(tail, base, strict=True))


def child_dn(text: str, base_dn: str) -> str:
    """The DN a client asked for, rebuilt from its parsed RDNs, when it names an entry
    strictly below ``base_dn`` with one ``type=value`` per RDN and no hex values.
    Raises ``DnRefusedError`` naming the broken rule otherwise."""
    try:
        dn = parse_dn(text)
    except ValueError as exc:
        raise DnRefusedError(f"is not a distinguished name ({exc})") from None
    base = parse_dn(base_dn)
    within = is_within(dn, base)
    own = dn[: len(dn) - len(base)] if within else dn
    for rdn in own:
        if len(rdn) > 1:
            raise DnRefusedError("has a multi-valued RDN (type=value+type=value), not allowed")
        if rdn[0].hex_form:
            raise DnRefusedError("has a #-hex value, not allowed")
    if not within or not own:
        raise DnRefusedError("must name an entry below base_dn")
    # The base's RDNs as configured: only the client's own RDNs come from the client.
    return render(own + base)


def _rdn_key(rdn: Rdn) -> frozenset[tuple[str, str]]:
    return frozenset(ava.key for ava in rdn)


def _ava(text: str, start: int) -> tuple[Ava, int]:
    """The AVA at ``start`` and the index of the separator after it (or the end)."""
    equals = text.find("=", start)
    if equals < 0:
        raise ValueError(f"no '=' after position {start}")
    type_ = text[start:equals].strip()
    if not type_ or not _is_type(type_):
        raise ValueError(f"bad attribute type {type_!r}")
    position = equals + 1
    while position < len(text) and text[position] == " ":
        position += 1
    if position < len(text) and text[position] == "#":
        value, position = _hex_value(text, position + 1)
        return Ava(type_, "#" + value, hex_form=True), position
    value, position = _string_value(text, position)
    return Ava(type_, value), position


def _is_type(name: str) -> bool:
    """A descriptor (``uid``, ``x-attr``) or a numeric OID (``0.9.2342...``)."""
    if name[0].isdigit():
        return all(part.isdigit() for part in name.split("."))
    return (
        name[0].isascii()
        and name[0].isalpha()
        and all(c.isascii() and (c.isalnum() or c == "-") for c in name)
    )


def _hex_value(text: str, start: int) -> tuple[str, int]:
    end = start
    while end < len(text) and text[end] in _HEX:
        end += 1
    digits = text[start:end]
    if not digits or len(digits) % 2:
        raise ValueError("a #-value needs an even number of hex digits")
    return digits, _after_value(text, end)


def _string_value(text: str, start: int) -> tuple[str, int]:
    """An escaped string value, unescaped; trailing unescaped spaces dropped."""
    out = bytearray()
    kept = 0  # length of ``out`` up to its last character that was escaped or not space
    position = start
    while position < len(text) and text[position] not in _SEPARATORS:
        char = text[position]
        if char == "\\":
            escaped, position = _escape(text, position + 1)
            out += escaped
            kept = len(out)
            continue
        if char in '";<>' or char == "\0":
            raise ValueError(f"unescaped {char!r} in a value")
        out += char.encode()
        if char != " ":
            kept = len(out)
        position += 1
    try:
        value = bytes(out[:kept]).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("a value's escapes are not UTF-8") from None
    if not value:
        raise ValueError("an empty value")
    return value, position


def _escape(text: str, position: int) -> tuple[bytes, int]:
    """The bytes of the escape after a backslash at ``position - 1``, and what follows."""
    pair = text[position : position + 2]
    if len(pair) == 2 and all(c in _HEX for c in pair):
        return bytes.fromhex(pair), position + 2
    if pair and pair[0] in ' "#+,;<=>\\':
        return pair[0].encode(), position + 1
    raise ValueError(f"bad escape at position {position - 1}")


def _after_value(text: str, position: int) -> int:
    while position < len(text) and text[position] == " ":
        position += 1
    if position < len(text) and text[position] not in _SEPARATORS:
        raise ValueError(f"unexpected {text[position]!r} after a value")
    return position
