"""The reference ceiling: the least a Python HTTP relay on this stack can do, run under the gateway's settings.

A Starlette app with one aiohttp session that forwards ``POST /{path}`` to the upstream and relays the answer:
no auth, no translation, no key pool, no middleware. Streams are sent with bare ASGI messages (no task group),
like the gateway's lean ``StreamBody``. Whatever the gateway costs beyond this is the gateway's own work.

Run: ``RELAY_UPSTREAM=http://127.0.0.1:8081 python -m bench.relay --port 8082``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

UPSTREAM = os.environ.get("RELAY_UPSTREAM", "http://127.0.0.1:8081").rstrip("/")
_session: list[aiohttp.ClientSession] = []


class _Relayed(Response):
    """Upstream stream bytes straight into ASGI body messages."""

    def __init__(self, upstream: aiohttp.ClientResponse) -> None:
        self._upstream = upstream
        self.status_code = upstream.status
        self.background = None
        self.init_headers({"content-type": upstream.headers.get("content-type", "text/event-stream")})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self._upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._upstream.release()


async def relay(request: Request) -> Response:
    query = request.scope["query_string"]
    url = UPSTREAM + request.url.path + ("?" + query.decode() if query else "")
    upstream = await _session[0].post(url, data=await request.body(),
                                      headers={"content-type": "application/json", "x-goog-api-key": "ok-relay"})
    if upstream.content_type == "text/event-stream":
        return _Relayed(upstream)
    body = await upstream.read()
    upstream.release()
    return Response(body, upstream.status, media_type=upstream.headers.get("content-type"))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # The gateway's pool size (UPSTREAM_CONNECTIONS default), so neither side is capped differently.
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=256)
    _session.append(aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)))
    yield
    await _session.pop().close()


app = Starlette(routes=[Route("/{path:path}", relay, methods=["POST"])], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.relay")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The same uvicorn settings as app/__main__.py, so the comparison is about the app and not the server.
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False, proxy_headers=True, forwarded_allow_ips="*", server_header=False)


if __name__ == "__main__":
    main()
