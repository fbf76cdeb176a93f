"""The last schema each connector's target reported, kept in the state folder.

The schema comes from the target (an LDAP server's, a table's columns), yet the SCIM
front-end needs it to answer reads from the connector space. Keeping the last one
lets a connector whose target is down at start still serve its durable space."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ecmahost.connectors.base import Attribute, DataType, Direction, Schema

__all__ = ["load_schema", "save_schema"]

log = logging.getLogger(__name__)


def _path(state_dir: Path, connector: str) -> Path:
    return state_dir / "schemas" / f"{connector}.json"


def save_schema(state_dir: Path, connector: str, schema: Schema) -> None:
    """Keep ``schema`` as the connector's last known one (replaced whole, never torn)."""
    path = _path(state_dir, connector)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "object_type": schema.object_type,
        "attributes": [
            {
                "name": a.name,
                "data_type": a.data_type.value,
                "is_anchor": a.is_anchor,
                "case_exact": a.case_exact,
                "multi_valued": a.multi_valued,
                "direction": a.direction.value,
                "assigned": a.assigned,
            }
            for a in schema.attributes
        ],
    }
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(partial, path)


def load_schema(state_dir: Path, connector: str) -> Schema | None:
    """The connector's last known schema; None if none was kept or it is unreadable
    (the connector then waits for its target, as on a first start)."""
    path = _path(state_dir, connector)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return Schema(
            document["object_type"],
            tuple(_attribute(a) for a in document["attributes"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the kept schema %s: %s", path, exc)
        return None


def _attribute(kept: dict[str, object]) -> Attribute:
    # Files kept before sets, directions and assigned anchors existed have none of
    # them: single-valued, both ways and written by the host, as then.
    direction = Direction(kept.get("direction", Direction.IMPORT_EXPORT.value))
    return Attribute(
        str(kept["name"]),
        DataType(kept["data_type"]),
        bool(kept["is_anchor"]),
        bool(kept["case_exact"]),
        bool(kept.get("multi_valued", False)),
        direction,
        bool(kept.get("assigned", False)),
    )
