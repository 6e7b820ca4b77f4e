"""The process's one link to Redis: the clients every store uses, the URL as logs may show it, and the outage
counters ``/health`` and ``/metrics`` report.

Stores differ in what a socket may wait (a session save waits longer than a pool pick) and in whether they
want text or bytes, so the link hands out one client per such profile, built once; every store of the same
profile shares its connection pool. Each store still decides for itself how to degrade while Redis is away
(the pool and the limits fall back to local memory, sessions answer 503); the link counts what they report.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger("gateway.redis")


class CountsErrors(Protocol):
    redis_errors: int


def redact_url(url: str) -> str:
    """scheme://host:port/db of a Redis URL, never its user or password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}{parts.path}"


class RedisLink:
    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redact_url(url)
        self._clients: dict[tuple[bool, float], aioredis.Redis] = {}
        self._users: dict[str, CountsErrors] = {}
        self.started = time.time()

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

    def register(self, name: str, user: CountsErrors) -> None:
        """A store whose ``redis_errors`` the link reports."""
        self._users[name] = user

    def stats(self) -> dict[str, Any]:
        errors = {name: int(getattr(user, "redis_errors", 0)) for name, user in self._users.items()}
        return {"url": self.where, "clients": len(self._clients), "errors": errors,
                "errors_total": sum(errors.values())}

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
