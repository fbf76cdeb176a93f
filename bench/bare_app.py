"""The reference server: a bare aiohttp app answering every GET with a fixed JSON
body. Its request rate under the same load generator is the practical ceiling of an
aiohttp service on this machine."""

from __future__ import annotations

import sys

from aiohttp import web

BODY = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0}'


async def _fixed(_request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def main() -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", _fixed)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
