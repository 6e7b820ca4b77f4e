"""Prometheus metrics: one registry per process, children bound once so that the hot path does one tuple lookup
and an increment or an observe.

Key states are read from the pool at scrape time rather than tracked on every request. Each worker process
keeps its own registry: with several workers, scrape each one (or run one worker per container), since a
scrape reaches whichever worker accepts it (documented in the README; no multiprocess directory to manage).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (CollectorRegistry, Counter, GCCollector, Gauge, Histogram, PlatformCollector,
                               ProcessCollector, generate_latest)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.keys import OutcomeKind
from app.surfaces import ROUTE_KEY, SURFACE_KEY

#: Client-facing latency: from a few ms (errors, cached answers) to long generations and streams.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60)
#: Model names come from clients: past this many distinct names, new ones are counted as "other".
MAX_MODELS = 64


class _Analytics:
    """The analytics pipeline's running totals, exported as counters read at scrape time."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def collect(self) -> Any:
        family = CounterMetricFamily("gateway_analytics_events", "Analytics events by fate", labels=["fate"])
        for name, value in sorted(self.values.items()):
            family.add_metric([name], value)
        yield family


class Metrics:
    CONTENT_TYPE = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self._analytics = _Analytics()
        r.register(self._analytics)
        self._requests = Counter("gateway_requests", "Client requests by surface and status class",
                                 ["surface", "status"], registry=r)
        self._duration = Histogram("gateway_request_duration_seconds", "Client request duration, to the end of "
                                   "the response body, by surface, route template and status",
                                   ["surface", "route", "status"], buckets=REQUEST_BUCKETS, registry=r)
        self._upstream = Counter("gateway_upstream_answers", "Upstream answers by classification",
                                 ["outcome"], registry=r)
        self._upstream_duration = Histogram("gateway_upstream_duration_seconds", "One upstream attempt, sent to "
                                            "classified (a stream: to its end), by model and outcome",
                                            ["model", "outcome"], buckets=UPSTREAM_BUCKETS, registry=r)
        self._ttft = Histogram("gateway_stream_first_token_seconds", "Upstream streams: request sent to the "
                               "first event, by model", ["model"], buckets=TTFT_BUCKETS, registry=r)
        self._keys = Gauge("gateway_keys", "Keys in the pool by state", ["state"], registry=r)
        self._pool = Gauge("gateway_pool_keys", "Keys per model: eligible (active and not cooling for the "
                           "model), cooling for the model, disabled", ["model", "state"], registry=r)
        self._redis_errors = Gauge("gateway_redis_errors", "Redis operations that failed since start, by the "
                                   "store that fell back (it served from local state meanwhile)", ["store"],
                                   registry=r)
        self._redis_state = Gauge("gateway_redis_state", "The process's Redis link: 1 for its current state "
                                  "(healthy, degraded: stores on their fallback, probing)", ["state"], registry=r)
        self._redis_outages = Gauge("gateway_redis_outages", "Times the Redis link went from healthy to degraded "
                                    "since start", registry=r)
        self._unknown = Counter("gateway_unknown_routes", "Requests for routes the gateway does not have, by "
                                "the surface whose prefix they used", ["surface"], registry=r)
        self._affinity = Counter("gateway_affinity", "Conversation affinity: hits on the bound key, new bindings, "
                                 "rebinds after the bound key failed or cooled", ["result"], registry=r)
        self._refusals = Counter("gateway_token_limit_refusals", "Calls refused by a client token's own limits, "
                                 "by limit", ["limit"], registry=r)
        self._affinity_children = {x: self._affinity.labels(x) for x in ("hit", "bind", "rebind")}
        self._upstream_children = {kind: self._upstream.labels(kind.value) for kind in OutcomeKind}
        self._request_children: dict[tuple[str, str], Any] = {}
        self._duration_children: dict[tuple[str, str, int], Any] = {}
        self._upstream_duration_children: dict[tuple[str, OutcomeKind], Any] = {}
        self._ttft_children: dict[str, Any] = {}
        self._models: set[str] = set()
        self._pool_models: set[str] = set()

    def _model(self, model: str) -> str:
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS:
            return "other"
        self._models.add(model)
        return model

    def upstream(self, kind: OutcomeKind, model: str = "", seconds: float | None = None) -> None:
        self._upstream_children[kind].inc()
        if seconds is None:
            return
        # Children are cached by label, not by the client's model name: past MAX_MODELS every new name is
        # "other", and a cache keyed by the raw name would grow with each one.
        label = self._model(model)
        child = self._upstream_duration_children.get((label, kind))
        if child is None:
            child = self._upstream_duration_children[(label, kind)] = self._upstream_duration.labels(
                label, kind.value)
        child.observe(seconds)

    def first_token(self, model: str, seconds: float) -> None:
        label = self._model(model)
        child = self._ttft_children.get(label)
        if child is None:
            child = self._ttft_children[label] = self._ttft.labels(label)
        child.observe(seconds)

    def affinity(self, result: str) -> None:
        self._affinity_children[result].inc()

    def unknown_route(self, surface: str) -> None:
        self._unknown.labels(surface).inc()

    def token_refused(self, limit: str) -> None:
        self._refusals.labels(limit or "other").inc()

    def request(self, surface: str, status: int) -> None:
        key = (surface, f"{status // 100}xx")
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self._requests.labels(*key)
        child.inc()

    def duration(self, surface: str, route: str, status: int, seconds: float) -> None:
        key = (surface, route, status)
        child = self._duration_children.get(key)
        if child is None:
            child = self._duration_children[key] = self._duration.labels(surface, route, str(status))
        child.observe(seconds)

    def render(self, key_summary: dict[str, int], analytics: dict[str, Any],
               pool: list[dict[str, Any]] | None = None, redis: dict[str, Any] | None = None) -> bytes:
        for name, count in ((redis or {}).get("errors") or {}).items():
            self._redis_errors.labels(name).set(count)
        if redis:
            for state in ("healthy", "degraded", "probing"):
                self._redis_state.labels(state).set(1 if redis.get("state") == state else 0)
            self._redis_outages.set(redis.get("outages", 0))
        for state in ("active", "cooling", "disabled"):
            self._keys.labels(state).set(key_summary.get(state, 0))
        self._analytics.values = {name: float(analytics[name]) for name in ("published", "dropped")
                                  if isinstance(analytics.get(name), (int, float))}
        if pool is not None:
            self._pool_gauges(pool)
        return generate_latest(self.registry)

    def _pool_gauges(self, pool: list[dict[str, Any]]) -> None:
        """Per model the pool has seen (cooldowns name models; "*" is every model)."""
        models = {"*"} | {m for entry in pool for m in entry.get("cooldowns", {})} | self._pool_models
        self._pool_models = {m for m in models if len(self._pool_models) < MAX_MODELS or m in self._pool_models}
        for model in self._pool_models:
            counts = {"eligible": 0, "cooling": 0, "disabled": 0}
            for entry in pool:
                if entry["state"] == "disabled":
                    counts["disabled"] += 1
                elif model in entry.get("cooldowns", {}) or (model == "*" and entry["state"] == "cooling"):
                    counts["cooling"] += 1
                else:
                    counts["eligible"] += 1
            for state, n in counts.items():
                self._pool.labels(model, state).set(n)


class RequestMetrics:
    """ASGI middleware: counts responses by surface (set by the route that took the request) and status, and
    times each to the end of its body by surface, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The surface's route wrapper labelled the scope; a request no surface took is "other".
                self.metrics.request(scope.get(SURFACE_KEY, "other"), status)
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if status:
                self.metrics.duration(scope.get(SURFACE_KEY, "other"), scope.get(ROUTE_KEY, "other"), status,
                                      time.perf_counter() - started)
