"""The process's one link to Redis: the clients every store uses, the one outage state machine, and the
counters ``/health`` and ``/metrics`` report (docs/architecture.md, "State").

Stores differ in what a socket may wait (a session save waits longer than a pool pick) and in whether they
want text or bytes, so the link hands out one client per such profile, built once.

The outage state lives here, once, for every store::

    healthy --(a store reports a failure)--> degraded --(retry_interval passed)--> probing
    probing --(PING answered)--> healthy        probing --(PING failed)--> degraded

Stores ask :meth:`RedisLink.usable` before a Redis operation and report a failure with :meth:`failed`; while
the link is not healthy they serve from their local fallback (the pool, limits, owners and bindings) or
answer 503 (sessions) *without touching Redis*, so an outage costs a request no timeout after the first
failure. The link's own probe task (one ``PING`` per ``retry_interval``) decides when Redis is back, not a
request; stores that keep state to replay wait for :meth:`wait_healthy`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

__all__ = ["ERRORS", "LinkState", "RedisLink", "redact_url"]

log = logging.getLogger("gateway.redis")

#: What a Redis operation raises when Redis is away (connection refused, reset, timeout, a Redis error).
ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
_MIN_PROBE_GAP = 0.05  # never a busy loop, even with retry_interval=0


class LinkState(enum.Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    PROBING = "probing"


def redact_url(url: str) -> str:
    """scheme://host:port/db of a Redis URL, never its user or password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}{parts.path}"


class RedisLink:
    def __init__(self, url: str, *, retry_interval: float = 1.0, probe_timeout: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.where = redact_url(url)
        self.retry_interval = retry_interval
        self._probe_timeout = probe_timeout
        self._clock = clock
        self._clients: dict[tuple[bool, float], aioredis.Redis] = {}
        self._state = LinkState.HEALTHY
        self._healthy = asyncio.Event()
        self._healthy.set()
        self._prober: asyncio.Task[None] | None = None
        self._closed = False
        self.errors: dict[str, int] = {}
        self.outages = 0
        self.probes = 0
        self.since = clock()  # when the current state began

    # -- clients --------------------------------------------------------------------------------------------

    def client(self, *, decode: bool = True, timeout: float = 0.5) -> aioredis.Redis:
        """The shared client of this profile. One immediate retry reconnects a pooled connection that Redis
        closed (a restart); more would only stretch an outage into request latency."""
        profile = (decode, timeout)
        client = self._clients.get(profile)
        if client is None:
            client = self._clients[profile] = aioredis.from_url(
                self.url, decode_responses=decode, socket_timeout=timeout, socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1))
        return client

    # -- the outage state machine ---------------------------------------------------------------------------

    @property
    def state(self) -> LinkState:
        return self._state

    def usable(self) -> bool:
        """Whether a store should use Redis now (False: serve from its fallback, do not wait on Redis)."""
        return self._state is LinkState.HEALTHY

    def failed(self, store: str, exc: BaseException, op: str) -> None:
        """A store's Redis operation failed: count it; the first failure of an outage is logged (type only: an
        exception's text may carry the URL) and starts the probe."""
        self.errors[store] = self.errors.get(store, 0) + 1
        if self._state is LinkState.HEALTHY:
            self.outages += 1
            log.warning("redis at %s failed (%s during %s, %s); stores use their fallback, probing every %gs",
                        self.where, store, op, type(exc).__name__, self.retry_interval)
            self._enter(LinkState.DEGRADED)
            self._healthy.clear()
            self._start_probe()

    async def wait_healthy(self) -> None:
        await self._healthy.wait()

    def _enter(self, state: LinkState) -> None:
        self._state = state
        self.since = self._clock()

    def _start_probe(self) -> None:
        if self._closed or (self._prober is not None and not self._prober.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the next async failure starts it
            return
        self._prober = loop.create_task(self._probe(), name="redis-link-probe")

    async def _probe(self) -> None:
        while not self._closed:
            await asyncio.sleep(max(self.retry_interval, _MIN_PROBE_GAP))
            self._enter(LinkState.PROBING)
            self.probes += 1
            try:
                await asyncio.wait_for(self.client().ping(), self._probe_timeout)
            except (*ERRORS, asyncio.TimeoutError):
                self._enter(LinkState.DEGRADED)
                continue
            log.warning("redis at %s answers again; stores resume shared state", self.where)
            self._enter(LinkState.HEALTHY)
            self._healthy.set()
            return

    # -- reporting ------------------------------------------------------------------------------------------

    def register(self, name: str, _user: object = None) -> None:
        """Name a store so ``/health`` and ``/metrics`` list it (with zero errors) before its first failure."""
        self.errors.setdefault(name, 0)

    def stats(self) -> dict[str, Any]:
        return {"url": self.where, "state": self._state.value, "since": round(self.since, 3),
                "clients": len(self._clients), "errors": dict(self.errors),
                "errors_total": sum(self.errors.values()), "outages": self.outages, "probes": self.probes}

    async def close(self) -> None:
        self._closed = True
        prober, self._prober = self._prober, None
        if prober is not None:
            prober.cancel()
            await asyncio.gather(prober, return_exceptions=True)
        for client in self._clients.values():
            try:
                await client.aclose()
            except ERRORS:
                pass
        self._clients.clear()
