"""Prometheus metrics: one registry per app, children bound once so that the hot path only increments.

Key states are read from the pool at scrape time rather than tracked on every request.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.keys import OutcomeKind
from app.surfaces import SURFACE_KEY

class Metrics:
    CONTENT_TYPE = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter("gateway_requests", "Client requests by surface and status class",
                                 ["surface", "status"], registry=self.registry)
        self._upstream = Counter("gateway_upstream_answers", "Upstream answers by classification",
                                 ["outcome"], registry=self.registry)
        self._keys = Gauge("gateway_keys", "Keys in the pool by state", ["state"], registry=self.registry)
        self._events = Gauge("gateway_analytics", "Analytics pipeline counters", ["counter"],
                             registry=self.registry)
        self._redis_errors = Gauge("gateway_redis_errors", "Redis operations that failed since start, by the "
                                   "store that fell back (it served from local state meanwhile)", ["store"],
                                   registry=self.registry)
        self._unknown = Counter("gateway_unknown_routes", "Requests for routes the gateway does not have, by "
                                "the surface whose prefix they used", ["surface"], registry=self.registry)
        self._affinity = Counter("gateway_affinity", "Conversation affinity: hits on the bound key, new bindings, "
                                 "rebinds after the bound key failed or cooled", ["result"], registry=self.registry)
        self._affinity_children = {r: self._affinity.labels(r) for r in ("hit", "bind", "rebind")}
        self._upstream_children = {kind: self._upstream.labels(kind.value) for kind in OutcomeKind}
        self._request_children: dict[tuple[str, str], Any] = {}

    def upstream(self, kind: OutcomeKind) -> None:
        self._upstream_children[kind].inc()

    def affinity(self, result: str) -> None:
        self._affinity_children[result].inc()

    def unknown_route(self, surface: str) -> None:
        self._unknown.labels(surface).inc()

    def request(self, surface: str, status: int) -> None:
        key = (surface, f"{status // 100}xx")
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self._requests.labels(*key)
        child.inc()

    def render(self, key_summary: dict[str, int], analytics: dict[str, Any],
               redis: dict[str, Any] | None = None) -> bytes:
        for name, count in ((redis or {}).get("errors") or {}).items():
            self._redis_errors.labels(name).set(count)
        for state in ("active", "cooling", "disabled"):
            self._keys.labels(state).set(key_summary.get(state, 0))
        for name in ("published", "dropped"):
            if isinstance(analytics.get(name), (int, float)):
                self._events.labels(name).set(analytics[name])
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware counting responses by surface (set by the route that took the request) and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The surface's route wrapper labelled the scope; a request no surface took is "other".
                self.metrics.request(scope.get(SURFACE_KEY, "other"), message["status"])
            await send(message)

        await self.app(scope, receive, counting_send)
