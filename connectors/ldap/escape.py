"""Escaping of values placed in LDAP distinguished names (RFC 4514) and search
filters (RFC 4515).

Written here rather than taken from ldap3: its ``escape_rdn`` fails on an empty
value and writes NUL as a backslash and a raw NUL, and its filter parser strips
leading and trailing white space from assertion values, so a value that starts
with a space has to reach it hex-escaped.
"""

from __future__ import annotations

__all__ = ["escape_dn_value", "escape_filter_value"]

_DN_SPECIAL = frozenset('"+,;<>\\=')
"""Characters RFC 4514 section 2.4 requires escaped anywhere (``=`` is optional but
harmless, and some parsers trip on it)."""

_FILTER_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._@:/+,;=#'!?$%^&~"
)
"""Characters left as they are in a filter value; every other one is hex-escaped."""


def escape_dn_value(value: str) -> str:
    """``value`` as an RFC 4514 attribute value, ready for ``attr=<value>``.

    Raises ValueError for an empty value, which a DN cannot name.
    """
    if not value:
        raise ValueError("an RDN value cannot be empty")
    last = len(value) - 1
    out: list[str] = []
    for index, char in enumerate(value):
        if char == "\0":
            out.append("\\00")
        elif (
            char in _DN_SPECIAL
            or (index in (0, last) and char == " ")
            or (index == 0 and char == "#")
        ):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def escape_filter_value(value: str) -> str:
    """``value`` as an RFC 4515 assertion value, ready for ``(attr=<value>)``.

    Everything but plain ASCII letters, digits and a few punctuation marks is
    written as ``\\XX`` escapes of its UTF-8 bytes, which every server accepts and no
    client library re-interprets (``*``, ``(``, ``)``, ``\\``, NUL, white space, and
    non-ASCII characters included).
    """
    return "".join(
        char if char in _FILTER_SAFE else "".join(f"\\{byte:02x}" for byte in char.encode())
        for char in value
    )
