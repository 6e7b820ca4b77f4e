"""The per-process container: settings in, every shared part built once (docs/architecture.md, "The house").

One pooled upstream session, one KeyManager, one state store, one analytics sink per process. Routes reach
it through ``request.app.state.gateway``; parts never import it and never see ``Settings``: each is built
with its own frozen slice (:mod:`app.slices`) or the two or three plain values it takes.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from app import slices
from app.config import Settings
from app.console.session import SessionSigner
from app.keys import KeyManager, MemoryPoolStore, Ownership, PoolStore, SurgeDetector, build_hot_map, key_id
from app.keys.affinity import BINDING_CACHE_TTL, Affinity
from app.keys.key_policy import KeyPolicies
from app.keys.ownership import OWNER_CACHE_TTL
from app.keys.worker_store import WorkerPoolStore, compact
from app.net import FetchLimits, SafeFetcher
from app.net.routes import RouteTable
from app.observability.events import EventSink
from app.observability.metrics import Metrics
from app.observability.pipeline import build_event_sink
from app.protocols.openai_media import MediaModels
from app.security import TokenGuard
from app.state.durable import CipherError, DurableState, DurableStore, KeyCipher, database_url
from app.state.limits import TokenLimiter
from app.state.redis_link import RedisLink
from app.state.worker_bus import WorkerBus
from app.state.policy import TokenRegistry
from app.services.chat import ChatService
from app.services.completions import CompletionsService
from app.services.embeddings import EmbeddingsService
from app.services.media_gen import MediaGenService
from app.services.messages import MessagesService
from app.services.models import ModelCatalog
from app.services.native import NativeService
from app.services.prober import KeyProber
from app.services.resources import ResourceService
from app.services.response_store import ResponseStore, build_response_store
from app.services.responses import ResponsesService
from app.services.sessions import build_sessions
from app.services.signatures import SignatureCache
from app.upstream import GeminiClient

log = logging.getLogger("gateway")

#: The shape of a key id (``app.keys.ids``): a mapping entry that looks like one names a key by its id.
_KEY_ID = re.compile(r"^(key-[0-9a-f]{12}|.{4}….{4}-[0-9a-f]{6})$")


class Gateway:
    """Everything a request needs, built once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings  # for start-up and the console's settings view; parts get slices
        self.http = slices.routes(settings)
        # One link to Redis for every store of this process (None: memory mode).
        self.redis = RedisLink(settings.redis_url) if settings.redis_url else None
        # Client tokens: ALLOWED_TOKENS at first, then whatever the durable store holds (same interface).
        self.tokens = TokenRegistry(settings.allowed_tokens)
        self.limiter = TokenLimiter(link=self.redis)
        self.admin_guard = TokenGuard([settings.auth_token] if settings.auth_token else [])
        self.console_sessions = SessionSigner(settings.auth_token, settings.console_session_ttl)
        self.metrics_guard = TokenGuard([settings.metrics_token] if settings.metrics_token else [])
        self.metrics = Metrics()
        self.store: PoolStore = self._store(self.redis)
        self.keys = KeyManager(settings.api_keys, self.store, options=slices.pool(settings),
                               project_of=self._projects(settings),
                               surge=SurgeDetector(settings.ip_limit_threshold, settings.ip_limit_window),
                               policies=self._policies(settings))
        self.routes = RouteTable(default_proxy=settings.outbound_proxy,
                                 proxies=self._by_id(settings, settings.key_proxies),
                                 kinds=self._by_id(settings, settings.key_kinds))
        self.durable = self._durable(settings)
        self.client = GeminiClient(slices.upstream(settings), self.keys,
                                   on_outcome=self.metrics.upstream, on_first_event=self.metrics.first_token,
                                   on_report=self.durable.on_report if self.durable else None,
                                   routes=self.routes)
        self.prober = KeyProber(self.keys, self.client, interval=settings.check_interval)
        self.events: EventSink = build_event_sink(slices.analytics(settings))
        if self.durable is not None:
            self.events = self.durable.tap(self.events)  # counts usage, then hands on to analytics
        self.signatures = SignatureCache()
        self.fetcher = self._fetcher(settings)
        self.catalog = ModelCatalog(self.client, settings.models_cache_ttl)
        # Resource owners and conversation bindings, in the hot store (memory or Redis).
        self.ownership = Ownership(build_hot_map(self.redis, "gg:own:", cache_ttl=OWNER_CACHE_TTL))
        self.affinity = Affinity(build_hot_map(self.redis, "gg:aff:", cache_ttl=BINDING_CACHE_TTL,
                                               write_behind=True), settings.affinity_ttl,
                                 on_event=self.metrics.affinity)
        self.resources = ResourceService(self.client, self.ownership, self.affinity)
        self.chat = ChatService(self.client, search_models=settings.model_search,
                                code_execution=settings.tools_code_execution_enabled,
                                signatures=self.signatures, events=self.events, fetcher=self.fetcher,
                                resources=self.resources, affinity=self.affinity)
        self.messages = MessagesService(self.client, model_map=settings.anthropic_model_map,
                                        signatures=self.signatures, events=self.events, fetcher=self.fetcher,
                                        affinity=self.affinity)
        self.response_store: ResponseStore = build_response_store(
            self.redis, ttl=settings.responses_ttl, max_count=settings.responses_max_count,
            max_bytes=settings.responses_max_bytes)
        self.responses = ResponsesService(self.client, store=self.response_store, signatures=self.signatures,
                                          events=self.events, fetcher=self.fetcher, affinity=self.affinity)
        self.completions = CompletionsService(self.client, self.events)
        self.embeddings = EmbeddingsService(self.client)
        self.media = MediaGenService(self.client, MediaModels(settings.image_model, settings.tts_model,
                                                              settings.transcribe_model), self.events)
        self.native = NativeService(self.client, self.events, self.affinity)
        self.sessions = build_sessions(slices.sessions(settings), client=self.client, events=self.events,
                                       redis=self.redis, affinity=self.affinity)

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

    @classmethod
    def _policies(cls, settings: Settings) -> KeyPolicies:
        """Weights, tiers and model lists from the settings (the durable store's values override them)."""
        return KeyPolicies(weights=cls._by_id(settings, settings.key_weights),
                           tiers=cls._by_id(settings, settings.key_tiers),
                           models=cls._by_id(settings, settings.key_models),
                           exclude_models=cls._by_id(settings, settings.key_exclude_models))

    @staticmethod
    def _by_id(settings: Settings, mapping: dict[str, Any]) -> dict[str, Any]:
        """``KEY_PROXIES``, ``KEY_KINDS``, ``KEY_WEIGHTS``, ... name keys by the key itself or by its id (a key
        added later in the admin API too); the pool knows only ids."""
        known = {key_id(k) for k in settings.api_keys}
        return {(name if name in known or _KEY_ID.match(name) else key_id(name)): value
                for name, value in mapping.items()}

    def _durable(self, settings: Settings) -> DurableState | None:
        url = database_url(settings.data_dir, settings.database_url)
        if url is None:
            return None
        store = DurableStore(url, prefix=settings.database_table_prefix,
                             cipher=KeyCipher(settings.encryption_key))
        return DurableState(store, self.keys, self.tokens, routes=self.routes,
                            poll_interval=settings.state_poll_interval,
                            flush_interval=settings.usage_flush_interval,
                            usage_retention_days=settings.usage_retention_days,
                            error_retention_days=settings.error_log_retention_days)

    @staticmethod
    def _fetcher(settings: Settings) -> SafeFetcher | None:
        """The SSRF-safe fetcher for client-named URLs, or None when ``FETCH_CLIENT_URLS`` is off."""
        if not settings.fetch_client_urls:
            return None
        limits = FetchLimits(max_bytes=settings.image_fetch_max_bytes, timeout=settings.image_fetch_timeout)
        return SafeFetcher(limits, allow_private=settings.fetch_allow_private)

    @staticmethod
    def _store(link: RedisLink | None) -> PoolStore:
        if link is None:
            # Several workers without Redis: what they must agree on goes through the master's bus file.
            bus = WorkerBus.from_environment(compact=compact)
            return MemoryPoolStore() if bus is None else WorkerPoolStore(bus)
        from app.keys import RedisPoolStore
        return RedisPoolStore(link.url, link=link)

    async def start(self) -> None:
        if self.durable is not None:
            try:
                await self.durable.start(self.settings.api_keys, self.settings.allowed_tokens,
                                         self._projects(self.settings))
            except CipherError as exc:
                log.critical("cannot start: %s", exc)
                raise
            log.info("durable state: %s store ready", self.durable.store.backend)
        if self.routes.proxies():
            log.info("outbound proxies: %s", ", ".join(self.routes.proxies()))
        elif not self.settings.data_dir:
            log.warning("no DATA_DIR nor DATABASE_URL: keys and tokens changed at run time are not kept")
        await self.client.start()
        await self.events.start()
        await self.sessions.start()
        self.prober.start()
        if isinstance(self.store, WorkerPoolStore):
            log.warning("WORKERS=%d without REDIS_URL: the workers share the key pool's disables and daily "
                        "cooldowns; chat sessions, stored responses, resource owners, conversation affinity and "
                        "token and user rate limits are per worker (set REDIS_URL to share them)",
                        self.settings.workers)
        if not self.keys.has_keys():
            log.warning("no API keys are configured: API calls will answer 503 until API_KEYS is set")
        if self.settings.fetch_allow_private:
            log.warning("FETCH_ALLOW_PRIVATE is on: client URLs may reach internal addresses")
        if not self.admin_guard.configured:
            log.warning("AUTH_TOKEN is not set: the admin API is closed (a client token never opens it)")
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
        if self.fetcher is not None:
            await self.fetcher.close()
        await self.store.close()
        await self.response_store.close()
        await self.ownership.close()
        await self.affinity.close()
        if self.redis is not None:
            await self.redis.close()

    def health_extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {"analytics": self.events.stats(), "prober": self.prober.stats(),
                                  "outbound_proxies": self.routes.proxies(),
                                  "worker": {"pid": os.getpid(), "of": self.settings.workers}}
        if isinstance(self.store, WorkerPoolStore):
            extras["worker"]["bus"] = self.store.bus_stats()
        if self.redis is not None:
            extras["redis"] = self.redis.stats()
        if self.durable is not None:
            extras["durable"] = {"backend": self.durable.store.backend, **self.durable.stats}
        return extras
