"""The last resort: an exception no route handled still leaves as a JSON 500 in the caller's protocol.

Why: Starlette answers an unhandled exception with a text/plain 500 and uvicorn logs the exception with its
message, which can carry client content or an upstream text; every surface promises its own error shape and
no secret in any log. This middleware catches what slipped through, logs the exception's type and where it
was raised (never its message or locals) and renders the surface's shape, told apart by the path until the
lead folds it into the per-surface mounts (DESIGN.md, Surfaces).

A failure after the response started (a stream that broke mid-way) cannot become a new response: it is
logged and the connection is left for the server to close, so the client sees a broken stream rather than
a clean-looking end.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LastResort", "error_body", "surface_of"]

log = logging.getLogger("gateway.errors")

MESSAGE = "internal error: the gateway failed to handle this request (logged)"
_NATIVE = ("/v1beta/", "/gemini/v1beta/", "/hf/v1beta/", "/upload/", "/hf/upload/")
_SESSIONS = frozenset({"/start_chat", "/send_message", "/end_chat"})
_FRAMES = 4


def surface_of(path: str) -> str:
    """``native``, ``session``, ``admin`` or ``openai`` (the OpenAI shape is the default for the rest)."""
    bare = path[3:] if path.startswith("/hf/") else path
    if path.startswith(_NATIVE) or (bare.startswith("/v1/models/") and ":" in bare):
        return "native"
    if bare in _SESSIONS:
        return "session"
    if bare.startswith("/admin"):
        return "admin"
    return "openai"


def error_body(surface: str, status: int = 500) -> dict[str, Any]:
    """The surface's error envelope for a gateway failure."""
    if surface == "native":
        return {"error": {"code": status, "message": MESSAGE, "status": "INTERNAL"}}
    if surface == "session":
        return {"error": MESSAGE}
    if surface == "admin":
        return {"error": {"message": MESSAGE, "code": status}}
    return {"error": {"message": MESSAGE, "type": "api_error", "param": None, "code": "internal_error"}}


def _where(exc: BaseException) -> str:
    """The innermost frames as ``file:line in function``: enough to find the bug, no message, no values."""
    frames = traceback.extract_tb(exc.__traceback__)[-_FRAMES:]
    return " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} in {f.name}" for f in reversed(frames))


class LastResort:
    """ASGI middleware: unhandled exceptions become the surface's JSON 500 and one sanitised log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - this is the handler of last resort
            path: str = scope.get("path", "")
            log.error("unhandled %s on %s %s at %s", type(exc).__name__, scope.get("method", "?"), path,
                      _where(exc))
            body = orjson.dumps(error_body(surface_of(path)))
            try:
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
            except Exception:  # noqa: BLE001 - uvicorn raises RuntimeError once a response has started
                return  # the server closes the connection: the client sees a broken response
            await send({"type": "http.response.body", "body": body, "more_body": False})
