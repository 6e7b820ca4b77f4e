"""create_app(settings): the lifespan builds the shared pieces once; routers reach them through app.state.

One pooled upstream session, one KeyManager, one state store per process (DESIGN.md, The house).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from app.config import Settings, load_settings
from app.keys import KeyManager, MemoryPoolStore, PoolStore, SurgeDetector, key_id
from app.observability.events import EventSink
from app.observability.logs import setup_logging
from app.observability.metrics import Metrics, RequestMetrics
from app.observability.pipeline import build_event_sink
from app.routes import openai as openai_routes
from app.routes import admin as admin_routes
from app.routes import admin_api as admin_api_routes
from app.routes import native as native_routes
from app.routes import ops as ops_routes
from app.routes import sessions as session_routes
from app.security import TokenGuard
from app.state.durable import CipherError, DurableState, DurableStore, KeyCipher, database_url
from app.state.limits import TokenLimiter
from app.state.policy import TokenRegistry
from app.services.chat import ChatService
from app.services.embeddings import EmbeddingsService
from app.services.models import ModelCatalog
from app.services.native import NativeService
from app.services.prober import KeyProber
from app.services.sessions import build_sessions
from app.services.signatures import SignatureCache
from app.upstream import GeminiClient

log = logging.getLogger("gateway")

#: Routes tried first (Starlette matches in order; the native POST route was eleventh).
HOT_ROUTES = frozenset({"/v1/chat/completions", "/hf/v1/chat/completions", "/v1beta/models/{name:path}",
                        "/hf/v1beta/models/{name:path}"})
#: Young-generation GC threshold. With CPython's 700 the collector ran every ~7 requests at 64 concurrent,
#: promoting in-flight objects and feeding ~30 ms full passes: 90-110 us per request (docs/benchmarks.md).
#: The hot path makes almost no cyclic garbage, so collecting rarely loses nothing.
GC_YOUNG_THRESHOLD = 10_000


def settle_gc() -> None:
    """Start-up is over: freeze its objects out of the collector's sight and collect young objects rarely."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)


def hot_first(routes: list[BaseRoute]) -> list[BaseRoute]:
    hot = [r for r in routes if isinstance(r, Route) and r.path in HOT_ROUTES and "POST" in (r.methods or ())]
    return hot + [r for r in routes if r not in hot]


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


class Gateway:
    """Everything a request needs, built once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Client tokens: ALLOWED_TOKENS at first, then whatever the durable store holds (same interface).
        self.tokens = TokenRegistry(settings.allowed_tokens)
        self.limiter = TokenLimiter(settings.redis_url)
        self.admin_guard = TokenGuard([settings.auth_token] if settings.auth_token else [])
        self.metrics_guard = TokenGuard([settings.metrics_token] if settings.metrics_token else [])
        self.metrics = Metrics()
        self.store: PoolStore = self._store(settings)
        self.keys = KeyManager(settings.api_keys, self.store, max_failures=settings.max_failures,
                               project_of=self._projects(settings),
                               surge=SurgeDetector(settings.ip_limit_threshold, settings.ip_limit_window))
        self.durable = self._durable(settings)
        self.client = GeminiClient(base_url=settings.base_url, keys=self.keys, max_retries=settings.max_retries,
                                   time_out=settings.time_out, connect_timeout=settings.connect_timeout,
                                   read_timeout=settings.read_timeout, max_wait=settings.max_wait,
                                   connections=settings.upstream_connections,
                                   max_per_key=settings.max_concurrent_per_key, probe_model=settings.probe_model,
                                   on_outcome=self.metrics.upstream,
                                   on_report=self.durable.on_report if self.durable else None)
        self.prober = KeyProber(self.keys, self.client, interval=settings.check_interval)
        self.events: EventSink = build_event_sink(settings)
        if self.durable is not None:
            self.events = self.durable.tap(self.events)  # counts usage, then hands on to analytics
        self.signatures = SignatureCache()
        self.catalog = ModelCatalog(self.client, settings.models_cache_ttl)
        self.chat = ChatService(self.client, search_models=settings.model_search,
                                code_execution=settings.tools_code_execution_enabled,
                                signatures=self.signatures, events=self.events,
                                image_max_bytes=settings.image_fetch_max_bytes,
                                image_timeout=settings.image_fetch_timeout)
        self.embeddings = EmbeddingsService(self.client)
        self.native = NativeService(self.client, self.events)
        self.sessions = build_sessions(self)

    @staticmethod
    def _projects(settings: Settings) -> dict[str, str]:
        """``KEY_PROJECTS`` names keys by the key itself or by its id; the pool knows only ids."""
        known = {key_id(k): k for k in settings.api_keys}
        out: dict[str, str] = {}
        for name, project in settings.key_projects.items():
            kid = name if name in known else key_id(name)
            if kid in known:
                out[kid] = project
        return out

    def _durable(self, settings: Settings) -> DurableState | None:
        url = database_url(settings.data_dir, settings.database_url)
        if url is None:
            return None
        store = DurableStore(url, prefix=settings.database_table_prefix,
                             cipher=KeyCipher(settings.encryption_key))
        return DurableState(store, self.keys, self.tokens, poll_interval=settings.state_poll_interval,
                            flush_interval=settings.usage_flush_interval,
                            usage_retention_days=settings.usage_retention_days,
                            error_retention_days=settings.error_log_retention_days)

    @staticmethod
    def _store(settings: Settings) -> PoolStore:
        if settings.redis_url:
            from app.keys import RedisPoolStore
            return RedisPoolStore(settings.redis_url)
        return MemoryPoolStore()

    async def start(self) -> None:
        if self.durable is not None:
            try:
                await self.durable.start(self.settings.api_keys, self.settings.allowed_tokens,
                                         self._projects(self.settings))
            except CipherError as exc:
                log.critical("cannot start: %s", exc)
                raise
            log.info("durable state: %s store ready", self.durable.store.backend)
        elif not self.settings.data_dir:
            log.warning("no DATA_DIR nor DATABASE_URL: keys and tokens changed at run time are not kept")
        await self.client.start()
        await self.events.start()
        await self.sessions.start()
        self.prober.start()
        if not self.keys.has_keys():
            log.warning("no API keys are configured: API calls will answer 503 until API_KEYS is set")
        if not self.tokens.configured:
            log.warning("ALLOWED_TOKENS is empty: every API call will be refused with 401")

    async def stop(self) -> None:
        await self.prober.stop()
        await self.sessions.stop()
        await self.events.stop()  # flushes analytics within its own time bound
        if self.durable is not None:
            await self.durable.stop()  # the last usage flush
        await self.limiter.close()
        await self.client.close()
        await self.store.close()

    def health_extras(self) -> dict[str, Any]:
        extras = {"analytics": self.events.stats(), "prober": self.prober.stats()}
        if self.durable is not None:
            extras["durable"] = {"backend": self.durable.store.backend, **self.durable.stats}
        return extras


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

    routes = hot_first([*openai_routes.routes("/v1"), *openai_routes.routes("/hf/v1"), *native_routes.routes(),
                        *ops_routes.routes(), *admin_routes.routes(), *admin_api_routes.routes(),
                        *session_routes.routes()])
    middleware = [
        Middleware(RequestMetrics, metrics=gw.metrics),
        Middleware(BrowserCORS, allow_origins=settings.cors_allow_origins,
                   allow_methods=settings.cors_allow_methods, allow_headers=settings.cors_allow_headers,
                   allow_credentials=settings.cors_allow_credentials, expose_headers=["retry-after"]),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.gateway = gw
    return app
