"""The SCIM User resource of one connector: attribute paths in Entra's dialect,
request bodies to attribute values, and objects to SCIM JSON.

Connector attributes live under the ECMA2Host extension URN. Core attribute
names reach a connector attribute of the same name (case-insensitive), and
``active`` reaches the configured disable attribute, and ``password`` an attribute
named ``password`` or ``export_password``; core attributes the target does not have
are ignored, since Entra's default mappings send some of them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Mapping
from typing import Any, Final

from ecmahost.connectors.base import Attribute, DataType, Schema, Value
from ecmahost.engine.config import Deprovision
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.provisioning import PASSWORD_NAMES, is_active
from ecmahost.engine.scim.body import INT64_MAX, INT64_MIN
from ecmahost.engine.scim.value_set import as_set, items_of
from ecmahost.engine.space.records import is_pending
from ecmahost.engine.space.stored import StoredObject

__all__ = [
    "CORE_USER",
    "EXTENSION",
    "EXTERNAL_ID",
    "IGNORED",
    "ResourceMapper",
]

log = logging.getLogger(__name__)

EXPORT_PASSWORD: Final = "export_password"
"""The connector attribute SCIM's ``password`` reaches when the target has none named
``password``: ECMA2Host's name for an initial password. Either must be export-only
(``provisioning.check_passwords``), and ``render`` never shows one."""
EXTERNAL_ID: Final = "externalId"
"""The working key of SCIM's externalId: kept by the host, never exported."""
CORE_USER: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
EXTENSION: Final = "urn:ietf:params:scim:schemas:extension:ECMA2Host:2.0:User"
_SKIPPED_KEYS: Final = frozenset({"schemas", "meta", "id"})


class _Ignored:
    """A core attribute the target does not have."""

    def __repr__(self) -> str:
        return "IGNORED"


IGNORED: Final = _Ignored()
_EXTERNAL: Final = Attribute(EXTERNAL_ID)
"""externalId as a pseudo-attribute of the working mapping (a string, case-exact)."""


class ResourceMapper:
    """Maps between one connector's schema and SCIM Users."""

    def __init__(self, schema: Schema, deprovision: Deprovision) -> None:
        self.schema = schema
        self.active = schema.get(deprovision.disable_attribute or "") or None
        self.disabled_value = deprovision.disabled_value
        self._user_name = schema.get("UserName") or schema.anchor
        self._shown = tuple(
            a.name for a in schema.attributes if a.imported and a.name.lower() not in PASSWORD_NAMES
        )
        """The attributes ``render`` shows, in schema order: worked out once, not per User."""

    # -- paths -----------------------------------------------------------------

    def resolve(self, path: str) -> Attribute | _Ignored:
        """The attribute a path names, IGNORED for a core attribute the target does
        not have; 400 ``invalidPath`` for an unknown extension attribute."""
        urn, name = split_urn(path)
        if urn is not None and urn.lower() == EXTENSION.lower():
            attribute = self.schema.get(name)
            if attribute is None:
                raise ScimError(400, f"unknown attribute {path!r}", "invalidPath")
            return attribute
        if urn is not None and urn.lower() != CORE_USER.lower():
            raise ScimError(400, f"unknown schema in path {path!r}", "invalidPath")
        return self._core(name)

    def lookup(self, path: str) -> Attribute | None:
        """Like ``resolve`` for filters: anything unknown is None (matches nothing)."""
        try:
            found = self.resolve(path)
        except ScimError:
            return None
        return found if isinstance(found, Attribute) else None

    def _core(self, name: str) -> Attribute | _Ignored:
        lower = name.lower()
        if lower == "active":
            return self.active or IGNORED
        if lower == "username":
            return self._user_name
        if lower == "password":  # SCIM's own; ECMA2Host's mappings name it export_password
            return self.schema.get(name) or self.schema.get(EXPORT_PASSWORD) or IGNORED
        found = self.schema.get(name)
        if found is None and lower == EXTERNAL_ID.lower():
            return _EXTERNAL
        return found or IGNORED

    # -- values ----------------------------------------------------------------

    def coerce(self, attribute: Attribute, value: Any) -> Value | None:
        """A request value as the attribute's type; None (absent) for null or ``""``.
        A multi-valued attribute takes an array or one value and holds their set; a
        single-valued one takes an array of at most one value (Entra's expressions
        may produce one), and an array of several is a 400 naming the attribute."""
        if attribute.multi_valued:
            return as_set(attribute, value)
        value = _single(attribute, value)
        if value is None or value == "":
            return None
        if attribute.data_type is DataType.BOOLEAN:
            return _boolean(attribute, value)
        if attribute.data_type is DataType.INTEGER:
            return _integer(attribute, value)
        if isinstance(value, bool):
            return "True" if value else "False"
        if isinstance(value, int | float | str):
            return str(value)
        raise ScimError(400, f"{attribute.name}: expected a string", "invalidValue")

    def attributes_from(self, body: Any) -> dict[str, Value]:
        """The attributes a POST or PUT body carries (core first, the extension wins)."""
        if not isinstance(body, Mapping):
            raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
        attributes: dict[str, Value] = {}
        for key, value in body.items():
            if key in _SKIPPED_KEYS or key.lower() == EXTENSION.lower():
                continue
            self.assign(attributes, key, value)
        extension = _extension_part(body)
        for key, value in extension.items():
            if key not in _SKIPPED_KEYS:
                self.assign(attributes, f"{EXTENSION}:{key}", value)
        if not self.schema.anchor.assigned and not attributes.get(self.schema.anchor.name):
            raise ScimError(
                400, f"the anchor attribute {self.schema.anchor.name} is required", "invalidValue"
            )
        return attributes

    def assign(self, attributes: dict[str, Value], path: str, value: Any) -> None:
        """Set (or, for null, remove) the attribute ``path`` names in ``attributes``."""
        target = self.resolve(path)
        if isinstance(target, _Ignored):
            log.debug("ignoring %s: the target has no such attribute", path)
            return
        if not target.exported:
            # As ECMA2Host does with an attribute that has no export flow: the write
            # goes on without it, and the value stays the one the target reported.
            log.debug(
                "ignoring %s: import-only", path, extra={"action": "scim.import_only_ignored"}
            )
            return
        if target == self.schema.anchor and not _anchor_typed(target, _single(target, value)):
            raise ScimError(400, f"the anchor {target.name} must be a string", "invalidValue")
        coerced = self.coerce(target, value)
        if isinstance(coerced, bool) and target is self.active and _is_core_active(path):
            coerced = coerced is not self.disabled_value  # active false → the disabled value
        if coerced is None:
            attributes.pop(target.name, None)
        else:
            attributes[target.name] = coerced

    def working(self, obj: StoredObject) -> dict[str, Value]:
        """The object's attributes plus its externalId: what a PATCH starts from."""
        working = dict(obj.attributes)
        if obj.external_id is not None:
            working[EXTERNAL_ID] = obj.external_id
        return working

    def is_active(self, attributes: Mapping[str, Value]) -> bool:
        """False only when the disable attribute is present and false."""
        flag = self.active.name if self.active is not None else None
        return is_active(attributes, flag, self.disabled_value)

    # -- rendering -------------------------------------------------------------

    def render(self, obj: StoredObject, location: str) -> dict[str, Any]:
        """The SCIM User for ``obj``: no nulls, connector attributes in the extension."""
        attributes = obj.attributes
        extension = {name: attributes[name] for name in self._shown if name in attributes}
        resource: dict[str, Any] = {
            "schemas": [CORE_USER, EXTENSION],
            "id": obj.id,
            "userName": str(obj.attributes.get(self._user_name.name, _shown_anchor(obj))),
        }
        if obj.external_id is not None:
            resource["externalId"] = obj.external_id
        if self.active is not None and self.active.name in obj.attributes:
            resource["active"] = self.is_active(obj.attributes)
        resource[EXTENSION] = extension
        resource["meta"] = {
            "resourceType": "User",
            "created": _iso(obj.created_at),
            "lastModified": _iso(obj.updated_at),
            "location": location,
            "version": etag(obj),
        }
        return resource


def etag(obj: StoredObject) -> str:
    return f'W/"{obj.version}"'


def split_urn(path: str) -> tuple[str | None, str]:
    """``urn:…:User:Title`` → (``urn:…:User``, ``Title``); a bare name has no URN."""
    if not path.lower().startswith("urn:"):
        return None, path
    urn, _, name = path.rpartition(":")
    return urn, name


def _is_core_active(path: str) -> bool:
    """Whether ``path`` is SCIM's ``active`` rather than the connector's own attribute."""
    urn, name = split_urn(path)
    return name.lower() == "active" and (urn is None or urn.lower() == CORE_USER.lower())


def _extension_part(body: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, value in body.items():
        if key.lower() == EXTENSION.lower():
            if value is None:
                return {}
            if not isinstance(value, Mapping):
                raise ScimError(400, f"{EXTENSION} must be an object", "invalidSyntax")
            return value
    return {}


def _single(attribute: Attribute, value: Any) -> Any:
    """The one item of an array given to a single-valued attribute (None for an
    empty array); any other value as it is."""
    if not isinstance(value, list):
        return value
    items = items_of(value)
    if len(items) > 1:
        raise ScimError(
            400,
            f"{attribute.name} is single-valued: got {len(items)} values",
            "invalidValue",
        )
    return items[0] if items else None


def _shown_anchor(obj: StoredObject) -> str:
    """The anchor as a name; the id until the target assigned one (the pending
    anchor is the host's placeholder, never shown)."""
    return obj.id if is_pending(obj.anchor) else obj.anchor


def _anchor_typed(anchor: Attribute, value: Any) -> bool:
    """Whether ``value`` may name an anchor: a string (or null, refused later as a
    missing anchor); an integer only for an Integer anchor. A number or boolean is
    not quietly turned into the text that would then be the object's identity."""
    if value is None or isinstance(value, str):
        return True
    is_int = isinstance(value, int) and not isinstance(value, bool)
    return is_int and anchor.data_type is DataType.INTEGER


def _shown(value: Any) -> str:
    """``value`` for an error detail: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _boolean(attribute: Attribute, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ScimError(
        400, f"{attribute.name}: expected a boolean, got {_shown(value)}", "invalidValue"
    )


def _integer(attribute: Attribute, value: Any) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and len(value) <= 40:  # int() of a long text is slow
        with contextlib.suppress(ValueError):
            number = int(value.strip())
    if number is None:
        raise ScimError(
            400, f"{attribute.name}: expected an integer, got {_shown(value)}", "invalidValue"
        )
    if not INT64_MIN <= number <= INT64_MAX:
        # The space's SQLite INTEGER and the targets hold 64 bits, no more.
        raise ScimError(400, f"{attribute.name}: integer outside 64 bits", "invalidValue")
    return number


@functools.lru_cache(maxsize=1024)
def _iso(moment: Any) -> str:
    """Cached: the objects of one import batch share their times."""
    return f"{moment.isoformat(timespec='seconds')}Z"
