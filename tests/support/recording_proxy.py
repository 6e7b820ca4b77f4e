"""A loopback pass-through proxy that records what a real client sends to the gateway and what it got back.

The gateway keeps no access log, so a client test that must show *which* routes, headers and models a tool
like Claude Code used (and that none of its calls failed) puts this proxy between the client and the
gateway. Bodies and responses are relayed unchanged (streams chunk by chunk); only non-secret headers are
kept in the record, never ``authorization`` or ``x-api-key``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "proxy-authorization"})
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive",
                         "accept-encoding", "content-encoding"})


@dataclass
class Exchange:
    """One client request and the status the gateway answered with."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    auth: str = ""  # which credential header carried the token ("x-api-key", "authorization" or "")

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None


@dataclass
class RecordingProxy:
    url: str
    exchanges: list[Exchange] = field(default_factory=list)


def _public_headers(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in SECRET_HEADERS}


def _make_app(target: str, record: RecordingProxy) -> web.Application:
    session: dict[str, aiohttp.ClientSession] = {}

    async def on_startup(_: web.Application) -> None:
        session["s"] = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=120))

    async def on_cleanup(_: web.Application) -> None:
        await session["s"].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        auth = next((h for h in ("x-api-key", "authorization") if h in request.headers), "")
        exchange = Exchange(request.method, request.path, request.query_string,
                            _public_headers(request.headers), body, auth=auth)
        record.exchanges.append(exchange)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with session["s"].request(request.method, target + request.path_qs, headers=headers,
                                        data=raw or None) as upstream:
            exchange.status = upstream.status
            response = web.StreamResponse(status=upstream.status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


@contextlib.contextmanager
def recording_proxy(target: str) -> Iterator[RecordingProxy]:
    """Serve a proxy to ``target`` (a base URL without a trailing slash) on a free loopback port."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}
    record = RecordingProxy("")

    async def start() -> None:
        runner = web.AppRunner(_make_app(target.rstrip("/"), record), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        record.url = f"http://127.0.0.1:{port}"
        holder["runner"] = runner

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="recording-proxy", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("recording proxy did not start")
    try:
        yield record
    finally:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
