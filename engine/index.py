"""The attribute value index: one row per present value, so that ``eq`` on any
attribute of any connector is an index lookup instead of a scan."""

from __future__ import annotations

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import Value
from engine.models import ObjectRow, ObjectValue

__all__ = ["index_text", "reindex"]


def index_text(value: Value) -> str:
    """The text a value is indexed and compared under (case-insensitive)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).casefold()


async def reindex(session: AsyncSession, row: ObjectRow) -> None:
    """Rewrite the object's index rows; an object SCIM does not show has none."""
    await session.execute(delete(ObjectValue).where(ObjectValue.object_id == row.id))
    if row.state != "present":
        return
    values = [
        {
            "object_id": row.id,
            "connector": row.connector,
            "attr": name.lower(),
            "value": index_text(v),
        }
        for name, v in row.attributes.items()
        if v is not None and v != ""
    ]
    if values:
        await session.execute(insert(ObjectValue), values)
