"""SCIM filters as SQL over the connector space's value index.

Every comparison is a subquery on ``object_values`` keyed by (connector, attr,
value), joined back to the objects by their serial, so ``eq`` on any attribute is an
index lookup and nothing is evaluated in Python. An attribute the schema does not
know matches nothing, which is how Entra's ``PLACEHOLDER eq "…"`` test query gets
its empty list.
"""

from __future__ import annotations

from typing import Any

from ecmahost.connectors.base import Attribute, DataType
from ecmahost.engine.scim.filter import And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath
from ecmahost.engine.scim.resource import EXTERNAL_ID, ResourceMapper
from ecmahost.engine.space.index import index_text
from ecmahost.engine.space.models import ObjectRow, ObjectValue
from sqlalchemy import ColumnElement, Integer, and_, cast, false, not_, or_, select

__all__ = ["eq_lookup", "filter_clause"]

_LIKE_ESCAPE = "\\"


def filter_clause(mapper: ResourceMapper, connector: str, node: Filter) -> ColumnElement[bool]:
    """A WHERE clause on ``ObjectRow`` selecting the objects ``node`` matches.

    Built with an explicit stack, children before their parent: the parser caps a
    filter's terms, and this build does not lean on Python's recursion either."""
    built: list[ColumnElement[bool]] = []
    stack: list[tuple[Filter, bool]] = [(node, False)]
    while stack:
        item, children_built = stack.pop()
        children = _children(item)
        if children and not children_built:
            stack.append((item, True))
            stack.extend((child, False) for child in reversed(children))
        elif children:
            operands = built[-len(children) :]
            del built[-len(children) :]
            built.append(_combine(item, operands))
        else:
            built.append(_leaf(mapper, connector, item))
    return built[0]


def _children(node: Filter) -> tuple[Filter, ...]:
    if isinstance(node, And | Or):
        return (node.left, node.right)
    return (node.expr,) if isinstance(node, Not) else ()


def _combine(node: Filter, operands: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    if isinstance(node, And):
        return and_(*operands)
    return or_(*operands) if isinstance(node, Or) else not_(operands[0])


def _leaf(mapper: ResourceMapper, connector: str, node: Filter) -> ColumnElement[bool]:
    if isinstance(node, Present):
        attribute = _attribute(mapper, node.attr)
        if attribute is not None and attribute.name == EXTERNAL_ID:
            return ObjectRow.external_id.is_not(None)
        return _values(connector, attribute, None) if attribute else false()
    if isinstance(node, ValuePath):
        return false()  # sets hold plain strings: no sub-attributes to match inside
    assert isinstance(node, Compare), "And, Or and Not have children"
    return _compare(mapper, connector, node)


def eq_lookup(mapper: ResourceMapper, node: Filter) -> tuple[str, str] | None:
    """The (lower-cased attribute, index text) pair a filter amounts to when it is one
    ``eq`` comparison with a value in the value index (what Entra sends), else None."""
    if not isinstance(node, Compare) or node.op != "eq" or node.value is None:
        return None
    attribute = _attribute(mapper, node.attr)
    if attribute is None or attribute.name == EXTERNAL_ID:
        return None
    try:
        text = _text(mapper, attribute, node.value)
    except Exception:  # the general path decides what a bad value matches
        return None
    return None if text is None else (attribute.name.lower(), text)


def _text(mapper: ResourceMapper, attribute: Attribute, value: Any) -> str | None:
    """The index text a filter's value compares with; for a multi-valued attribute,
    with each of its values (``mail eq "x"``: any value is "x")."""
    coerced = mapper.coerce(attribute, value)
    if isinstance(coerced, list):
        return index_text(coerced[0]) if len(coerced) == 1 else None
    return None if coerced is None else index_text(coerced)


def _attribute(mapper: ResourceMapper, path: AttrPath) -> Attribute | None:
    return mapper.lookup(str(path))


def _compare(mapper: ResourceMapper, connector: str, node: Compare) -> ColumnElement[bool]:
    if node.attr.urn is None and node.attr.name.lower() == "id" and node.attr.sub is None:
        return _id_compare(node)
    attribute = _attribute(mapper, node.attr)
    if attribute is None:
        return false()
    if attribute.name == EXTERNAL_ID and mapper.schema.get(EXTERNAL_ID) is None:
        return _external_id_compare(node)
    if node.value is None:  # "attr eq null" asks for absence (RFC 7644 §3.4.2.2)
        present = _values(connector, attribute, None)
        return not_(present) if node.op == "eq" else present
    try:
        text = _text(mapper, attribute, node.value)
    except Exception:  # a value the attribute can never hold matches nothing
        text = None
    if text is None:
        return false() if node.op != "ne" else _values(connector, attribute, None)
    if node.op == "ne":
        return not_(_values(connector, attribute, ObjectValue.value == text))
    return _values(connector, attribute, _value_test(attribute, node.op, text))


def _value_test(attribute: Attribute, op: str, text: str) -> ColumnElement[bool]:
    column = ObjectValue.value
    if op == "eq":
        return column == text
    if op in ("co", "sw", "ew"):
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = {"co": f"%{escaped}%", "sw": f"{escaped}%", "ew": f"%{escaped}"}[op]
        return column.like(pattern, escape=_LIKE_ESCAPE)
    ordered = cast(column, Integer) if attribute.data_type is DataType.INTEGER else column
    bound = int(text) if attribute.data_type is DataType.INTEGER else text
    return {
        "gt": ordered > bound,
        "ge": ordered >= bound,
        "lt": ordered < bound,
        "le": ordered <= bound,
    }[op]


def _values(
    connector: str, attribute: Attribute, test: ColumnElement[bool] | None
) -> ColumnElement[bool]:
    """The objects having a value of ``attribute`` that passes ``test`` (any, if None)."""
    condition = and_(ObjectValue.connector == connector, ObjectValue.attr == attribute.name.lower())
    if test is not None:
        condition = and_(condition, test)
    return ObjectRow.serial.in_(select(ObjectValue.object_serial).where(condition))


def _id_compare(node: Compare) -> ColumnElement[bool]:
    return _column_compare(ObjectRow.id, node)


def _external_id_compare(node: Compare) -> ColumnElement[bool]:
    """externalId lives on the object row (case-exact, RFC 7643 §3.1)."""
    if node.value is None:
        present = ObjectRow.external_id.is_not(None)
        return not_(present) if node.op == "eq" else present
    return _column_compare(ObjectRow.external_id, node)


def _column_compare(column: Any, node: Compare) -> ColumnElement[bool]:
    value = str(node.value)
    if node.op == "eq":
        return column == value  # type: ignore[no-any-return]
    if node.op == "ne":
        return column != value  # type: ignore[no-any-return]
    return false()
