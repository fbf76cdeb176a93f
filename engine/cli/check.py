"""``ecmahost check-config``: is the file valid, and can each target be reached?

Without ``--connect`` nothing is opened and no secret is read, so the file can be
checked on a build machine; with it every connector is opened and closed once, with
the secrets, as serving would (but without serving, and without the state folder)."""

from __future__ import annotations

import asyncio
import sys

from ecmahost.connectors.exceptions import EcmahostError
from ecmahost.engine import tls
from ecmahost.engine.cli import certs
from ecmahost.engine.config import HostConfig
from ecmahost.engine.registry import build_connector

__all__ = ["check_config"]

CONNECT_TIMEOUT_S = 30.0


def check_config(config: HostConfig, *, connect: bool) -> int:
    """Print one line per connector; exit 1 when one cannot be reached."""
    if config.host.tls == "files":  # the operator's pair must load and match
        cert = certs.certificate_path(config)  # a ConfigError unless both are set
        assert config.host.tls_key is not None
        tls.server_context(cert, config.resolve(config.host.tls_key))
    connectors = {
        name: build_connector(c, config.base_dir) for name, c in config.connectors.items()
    }
    print(f"configuration valid: {len(connectors)} connector(s) {', '.join(connectors)}".rstrip())
    if not connect:
        return 0
    reached = [asyncio.run(_reach(name, config)) for name in connectors]
    return 0 if all(reached) else 1


async def _reach(name: str, config: HostConfig) -> bool:
    connector = build_connector(config.connector(name), config.base_dir)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await connector.open()
            schema = await connector.schema()
    except (EcmahostError, TimeoutError, OSError) as exc:
        print(f"connector {name}: cannot be reached: {exc or 'timed out'}", file=sys.stderr)
        return False
    finally:
        await connector.close()
    print(f"connector {name}: reached; {len(schema.attributes)} attribute(s)")
    return True
