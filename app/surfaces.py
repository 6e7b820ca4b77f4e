"""A surface is one client protocol, mounted once: its authentication, its error shape, its metrics label.

Every route of a surface is made by :meth:`Surface.route`, whose wrapper (one per route, built at start-up)
does, in order: label the request for ``/metrics``, authenticate the caller, run the handler, and render any
:class:`~app.errors.GatewayError` (or an unexpected exception, logged with its traceback) in the surface's own
error shape. So no route answers a text/plain 500, and no handler repeats an auth check.
:meth:`Surface.fallback` answers unknown routes under the surface's prefix with a 404 in the same shape,
naming the method and path, and counts them.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import GatewayError, InternalError, NotFound

log = logging.getLogger("gateway.surface")

#: The scope key a surface's wrapper sets; RequestMetrics labels the request with it.
SURFACE_KEY = "gateway.surface"
#: The route template (``/chat/completions``, ``unknown``) the wrapper sets: a bounded metrics label.
ROUTE_KEY = "gateway.route"

Handler = Callable[[Request], Awaitable[Response]]
Authenticate = Callable[[Request], None]
Render = Callable[[GatewayError], Response]


def json_response(status: int, body: bytes | dict[str, Any], headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(raw, status, headers or None, content_type)


@dataclass(frozen=True, slots=True)
class Surface:
    """``name`` labels metrics; ``render`` speaks the protocol's error shape; ``authenticate`` raises a
    :class:`GatewayError` for a caller it refuses (``None``: the surface checks callers itself)."""

    name: str
    render: Render
    authenticate: Authenticate | None = None

    def route(self, path: str, handler: Handler, methods: Sequence[str], *, auth: bool = True) -> Route:
        check = self.authenticate if auth else None
        return Route(path, self._wrap(handler, check, path), methods=list(methods))

    def fallback(self) -> Route:
        """The last route of a mount: any method, any path the mount has no route for."""

        async def unknown(request: Request) -> Response:
            counter = getattr(request.app.state, "gateway", None)
            if counter is not None:
                counter.metrics.unknown_route(self.name)
            path = request.url.path[:200]
            log.info("no route for %s %s (%s surface)", request.method, path, self.name)
            raise NotFound(f"no route for {request.method} {path} on this gateway", code="unknown_route")

        return Route("/{path:path}", self._wrap(unknown, None, "unknown"),
                     methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])

    def _wrap(self, handler: Handler, check: Authenticate | None, path: str) -> Handler:
        name, render = self.name, self.render

        async def endpoint(request: Request) -> Response:
            request.scope[SURFACE_KEY] = name
            request.scope[ROUTE_KEY] = path
            try:
                if check is not None:
                    check(request)
                return await handler(request)
            except GatewayError as exc:
                return render(exc)
            except Exception as exc:  # a bug: the caller still gets its protocol's shape, the operator a trace
                # The frames, not the exception's text: that may quote a request body, a key or a token.
                log.error("unexpected %s on %s %s (%s surface)\n%s", type(exc).__name__, request.method,
                          request.url.path[:200], name, "".join(traceback.format_tb(exc.__traceback__)))
                return render(InternalError("the gateway failed unexpectedly; the error was logged"))

        endpoint.__name__ = getattr(handler, "__name__", "endpoint")
        return endpoint
