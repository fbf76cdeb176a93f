"""The store: every statement against the connector space and the export queue.

``ConnectorSpace`` implements the contract of ``space.contract``; the rest of the
engine reaches the database through it alone (``ConnectorSpace.events`` for the
queue's table), never building SQL nor opening sessions itself.
"""

from ecmahost.engine.space.records import Staging, object_id_for
from ecmahost.engine.space.store import ConnectorSpace
from ecmahost.engine.space.stored import StoredObject

__all__ = ["ConnectorSpace", "Staging", "StoredObject", "object_id_for"]
