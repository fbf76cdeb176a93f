"""The kept schema file remembers which attributes are multi-valued, so a connector
whose target is down at start still serves its sets as sets."""

from __future__ import annotations

import json
from pathlib import Path

from ecmahost.connectors.base import Attribute, Schema
from ecmahost.engine.schema_file import load_schema, save_schema

SCHEMA = Schema(
    "Person",
    (Attribute("uid", is_anchor=True), Attribute("mail", multi_valued=True), Attribute("cn")),
)


def test_multi_valued_flag_survives_the_kept_schema(tmp_path: Path) -> None:
    save_schema(tmp_path, "LDAP", SCHEMA)
    loaded = load_schema(tmp_path, "LDAP")
    assert loaded == SCHEMA
    assert [a.name for a in loaded.attributes if a.multi_valued] == ["mail"]


def test_multi_valued_schema_kept_before_sets_loads_single_valued(tmp_path: Path) -> None:
    save_schema(tmp_path, "LDAP", SCHEMA)
    path = tmp_path / "schemas" / "LDAP.json"
    document = json.loads(path.read_text())
    for attribute in document["attributes"]:
        del attribute["multi_valued"]
    path.write_text(json.dumps(document))
    loaded = load_schema(tmp_path, "LDAP")
    assert loaded is not None and not any(a.multi_valued for a in loaded.attributes)
