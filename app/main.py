"""create_app(settings): one Mount per surface, the ``/hf`` alias, middleware; the lifespan starts the
per-process :class:`~app.gateway.Gateway`.

Routing (docs/architecture.md): ``/v1`` holds the OpenAI surface (and native ``POST /v1/models/{m}:{method}``),
``/v1beta`` and ``/gemini/v1beta`` the native surface, the sessions, ops and admin routes sit at the root, and
``/hf`` mounts all of it again for the Cloudflare Worker that prefixes every path. Each mount ends with its
surface's fallback, so an unknown route answers 404 in the caller's protocol and is counted.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.types import Receive, Scope, Send

from app.config import Settings, load_settings
from app.demo import DemoLabel
from app.gateway import Gateway
from app.observability.logs import setup_logging
from app.observability.metrics import RequestMetrics
from app.routes import admin as admin_routes
from app.routes import admin_api as admin_api_routes
from app.routes import anthropic as anthropic_routes
from app.routes import native as native_routes
from app.routes import openai as openai_routes
from app.routes import openai_files as openai_file_routes
from app.routes import openai_media as openai_media_routes
from app.routes import resources as resource_routes
from app.routes import responses_api
from app.routes import ops as ops_routes
from app.routes import sessions as session_routes

#: Young-generation GC threshold. With CPython's 700 the collector ran every ~7 requests at 64 concurrent,
#: promoting in-flight objects and feeding ~30 ms full passes: 90-110 us per request (docs/benchmarks.md).
#: The hot path makes almost no cyclic garbage, so collecting rarely loses nothing.
GC_YOUNG_THRESHOLD = 10_000


def settle_gc() -> None:
    """Start-up is over: freeze its objects out of the collector's sight and collect young objects rarely."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)


class BrowserCORS(CORSMiddleware):
    """Starlette's CORS wraps every send (stream chunks included) to add ``Vary: Origin``; a request without an
    ``Origin`` header is not a browser's cross-origin call and goes straight through."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, _ in scope["headers"]:
                if name == b"origin":
                    break
            else:
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def surface_routes() -> list[BaseRoute]:
    """Every surface, hot mounts first (Starlette matches in order)."""
    native = [*native_routes.routes(), *resource_routes.routes(), native_routes.SURFACE.fallback()]
    upload = [*resource_routes.upload_routes(), native_routes.SURFACE.fallback()]
    return [
        Mount("/v1", routes=[*openai_routes.routes(), *openai_media_routes.routes(), *responses_api.routes(),
                             *anthropic_routes.routes(),
                             *openai_file_routes.routes(), *native_routes.v1_routes(),
                             Mount("/messages", routes=[anthropic_routes.SURFACE.fallback()]),
                             openai_routes.SURFACE.fallback()]),
        Mount("/v1beta", routes=native),
        Mount("/gemini/v1beta", routes=native),
        Mount("/upload/v1beta", routes=upload),
        Mount("/gemini/upload/v1beta", routes=upload),
        *session_routes.routes(),
        *admin_routes.routes(),
        *admin_api_routes.routes(),
        *ops_routes.routes(),
    ]


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app. A bare Starlette app, not FastAPI: every route is a plain Starlette route, and FastAPI's
    own per-request layers (telemetry checks, body-limit and exit-stack middleware) cost the hot path CPU
    with nothing to show for it here (bench/, docs/benchmarks.md)."""
    settings = settings or load_settings()
    setup_logging(settings.log_level)
    gw = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        settle_gc()
        try:
            yield
        finally:
            await gw.stop()

    routes = surface_routes()
    fallback = ops_routes.SURFACE.fallback()
    hf_root = ops_routes.SURFACE.route("/hf", ops_routes.root, ["GET", "HEAD"])
    app_routes = [*routes, hf_root, Mount("/hf", routes=[*routes, fallback]), fallback]
    middleware = [
        Middleware(RequestMetrics, metrics=gw.metrics),
        Middleware(BrowserCORS, allow_origins=settings.cors_allow_origins,
                   allow_methods=settings.cors_allow_methods, allow_headers=settings.cors_allow_headers,
                   allow_credentials=settings.cors_allow_credentials, expose_headers=["retry-after"]),
    ]
    if settings.demo_mode:
        middleware.insert(0, Middleware(DemoLabel))
    app = Starlette(routes=app_routes, middleware=middleware, lifespan=lifespan)
    app.state.gateway = gw
    return app
