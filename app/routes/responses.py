"""Turning service replies into ASGI responses.

Streams use :class:`StreamBody`, a lean ASGI response instead of Starlette's ``StreamingResponse`` (which runs
a task group per stream under uvicorn; measured in bench/). It keeps what matters: a client disconnect cancels
the producer at once (so the upstream read is dropped), and an SSE comment is sent when the producer has been
silent for ``keepalive`` seconds, so proxies (Cloudflare, Hugging Face) keep long thinking pauses open.

The benchmark that chose it swaps in Starlette's and sse-starlette's stream responses from outside
(``bench/variant.py``); production code has no switch.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import time
from collections.abc import AsyncIterator

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.services.replies import JsonReply, Reply

log = logging.getLogger("gateway.stream")

PING = b": ping\n\n"

class StreamBody(Response):
    """Bytes from an async iterator, sent as bare ASGI messages by the request's own task.

    One helper task per stream watches ``receive``: it cancels the producer when the client disconnects
    (uvicorn drops sends to a closed socket silently, so without it a stream would keep reading the upstream
    until the model finished) and sends ``PING`` after ``keepalive`` seconds of producer silence. Starlette's
    ``StreamingResponse`` does the disconnect part with an anyio task group and sse-starlette adds more tasks and
    locks on top; measured against both in bench/ (docs/benchmarks.md).
    """

    def __init__(self, body: AsyncIterator[bytes], *, media_type: str, headers: dict[str, str] | None = None,
                 keepalive: float | None = None, status_code: int = 200, ping: bytes = PING) -> None:
        self._iterator = body
        self._ping = ping
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self._keepalive = keepalive
        self._last = 0.0  # monotonic time of the last chunk sent; one float store per chunk
        self._disconnected = False
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        producer = asyncio.current_task()
        assert producer is not None
        self._last = time.monotonic()
        watcher = asyncio.create_task(self._watch(receive, send, producer))
        try:
            async for chunk in self._iterator:
                self._last = time.monotonic()
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not self._disconnected:
                raise
            producer.uncancel()  # our own cancellation: the client left, nothing more to do
        except Exception as exc:
            # A bug after the 200 went out: no new response can be sent, and a clean end would lie. Log where
            # (never the exception's text, which may quote content) and leave the body unfinished, so the
            # server drops the connection and the client sees a broken stream.
            frames = traceback.extract_tb(exc.__traceback__)[-4:]
            where = " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in reversed(frames))
            log.error("stream failed after the commit: %s at %s", type(exc).__name__, where)
        finally:
            watcher.cancel()
            aclose = getattr(self._iterator, "aclose", None)
            if aclose is not None:
                await aclose()  # runs the producer's cleanup (upstream release, analytics) exactly once

    async def _watch(self, receive: Receive, send: Send, producer: asyncio.Task[object]) -> None:
        keepalive = self._keepalive
        while True:
            try:
                if keepalive:
                    async with asyncio.timeout(keepalive):
                        message = await receive()
                else:
                    message = await receive()
            except TimeoutError:
                if keepalive and time.monotonic() - self._last >= keepalive:
                    self._last = time.monotonic()
                    await send({"type": "http.response.body", "body": self._ping, "more_body": True})
                continue
            if message["type"] == "http.disconnect":
                self._disconnected = True
                producer.cancel()
                return


def to_response(reply: Reply, *, keepalive: float | None = None) -> Response:
    if isinstance(reply, JsonReply):
        return Response(reply.body, reply.status, reply.headers or None, reply.content_type)
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no", **reply.headers}
    return StreamBody(reply.body, media_type=reply.content_type, headers=headers, keepalive=keepalive,
                      ping=reply.ping or PING)
