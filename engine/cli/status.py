"""``ecmahost status``: the hosts serving the connector space, and who imports what.

On PostgreSQL the hosts of the cluster with their last heartbeat (by the database's
clock) and the connectors whose imports each runs; on SQLite there is one host."""

from __future__ import annotations

from ecmahost.engine.config import HostConfig
from ecmahost.engine.space import cluster

__all__ = ["show_status"]


async def show_status(config: HostConfig) -> int:
    if not config.shared_database:
        print(f"one host: the connector space is the SQLite file in {config.state_dir}")
        return 0
    members = await cluster.members(config.database_url)
    if not members:
        print("no host serves this connector space")
    for member in members:
        state = "up" if member.alive else "gone"
        leads = ", ".join(member.leads) or "-"
        print(
            f"{member.name} (pid {member.pid}, id {member.id}): {state}, heartbeat"
            f" {member.age_s:.1f} s ago, since {member.started_at:%Y-%m-%d %H:%M:%S} UTC;"
            f" runs the imports of: {leads}"
        )
    alive = [m for m in members if m.alive]
    for name in config.connectors:
        leaders = [m.name for m in alive if name in m.leads]
        print(f"connector {name}: imports run by {', '.join(leaders) or 'no host now'}")
    return 0
