"""The chat sessions API: ``POST /start_chat``, ``/send_message``, ``/end_chat``, also under ``/hf``.

Thin: read the body, hand it to :class:`app.services.sessions.SessionService`, send its reply. A body that is
not JSON is handed over as ``None`` so the service answers it like a body without the required field (403 for
start_chat, 404 for the others, as the contract says); only an oversized (413) or stalled (408) body is
refused here.

send_message also watches the connection: when the client disconnects, the service drops the turn if it is
still waiting for the chat, and does not keep it if the model is answering (the client will retry it).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import GatewayError
from app.routes.common import BodyError, gateway, read_json
from app.routes.responses import to_response
from app.surfaces import Surface, json_response


def render(exc: GatewayError) -> Response:
    """The sessions contract's shape: ``{"error": "<message>"}``."""
    return json_response(exc.status, {"error": exc.message}, exc.headers())


#: No caller token: a session is opened by a valid ``user_id`` in the body.
SURFACE = Surface("session", render)


async def _payload(request: Request) -> Any:
    try:
        return await read_json(request, gateway(request).http.max_request_body)
    except BodyError as exc:
        if exc.status in (408, 413):
            raise
        return None


async def start_chat(request: Request) -> Response:
    return to_response(await gateway(request).sessions.start_chat(await _payload(request)))


async def send_message(request: Request) -> Response:
    payload = await _payload(request)
    left = asyncio.Event()
    watcher = asyncio.create_task(_watch_disconnect(request, left))
    try:
        reply = await gateway(request).sessions.send_message(
            payload, idempotency_key=request.headers.get("idempotency-key"), left=left)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return to_response(reply)


async def _watch_disconnect(request: Request, left: asyncio.Event) -> None:
    """Sets ``left`` when the client goes away. The body is read whole by now, so the next ASGI message is
    the disconnect (uvicorn sends it when the connection closes)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            left.set()
            return


async def end_chat(request: Request) -> Response:
    return to_response(await gateway(request).sessions.end_chat(await _payload(request)))


def routes() -> list[Route]:
    return [SURFACE.route("/start_chat", start_chat, ["POST"]),
            SURFACE.route("/send_message", send_message, ["POST"]),
            SURFACE.route("/end_chat", end_chat, ["POST"])]
