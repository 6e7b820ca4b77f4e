"""A small expiring string map in the hot store: process memory, or Redis shared by replicas.

Resource owners and conversation bindings are both "name -> short value, forgotten after a while"; one map
type serves both so each costs one round trip per lookup (``MGET``/``SET PX``) and nothing that grows with
the pool. Redis failures never reach a request: the map falls back to local memory (logged once, counted)
and tries Redis again after ``retry_interval``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.state.redis_link import RedisLink
from redis.exceptions import RedisError

__all__ = ["HotMap", "MemoryHotMap", "RedisHotMap", "build_hot_map"]

log = logging.getLogger(__name__)

_ERRORS = (RedisError, OSError, TimeoutError)
#: Entries kept by the memory map before expired ones are swept (amortised, on insert).
_SWEEP_EVERY = 4096


class HotMap(Protocol):
    async def get_many(self, names: Sequence[str]) -> list[str | None]:
        """Values for ``names`` (``None`` where absent or expired), in order."""
        ...

    async def set(self, name: str, value: str, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds (at least one millisecond)."""
        ...

    async def delete(self, name: str) -> None:
        ...

    async def close(self) -> None:
        ...


class MemoryHotMap:
    """In-process map; expiry checked on read and swept now and then on write."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._clock = clock
        self._writes = 0

    async def get_many(self, names: Sequence[str]) -> list[str | None]:
        return [self.get_now(name) for name in names]

    def get_now(self, name: str) -> str | None:
        entry = self._data.get(name)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            self._data.pop(name, None)
            return None
        return entry[0]

    async def set(self, name: str, value: str, ttl: float) -> None:
        self.set_now(name, value, ttl)

    def set_now(self, name: str, value: str, ttl: float) -> None:
        now = self._clock()
        self._data[name] = (value, now + max(ttl, 0.001))
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._data = {k: v for k, v in self._data.items() if v[1] > now}

    async def delete(self, name: str) -> None:
        self._data.pop(name, None)

    async def close(self) -> None:
        return None


class RedisHotMap:
    """The map in Redis under ``prefix``; a local ``MemoryHotMap`` stands in while Redis is unreachable."""

    def __init__(self, url: str, prefix: str, *, client: aioredis.Redis | None = None, timeout: float = 0.5,
                 retry_interval: float = 5.0) -> None:
        self._redis: aioredis.Redis = client or aioredis.from_url(
            url, decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1))
        self._p = prefix
        self._local = MemoryHotMap()
        self._retry_interval = retry_interval
        self._retry_at = 0.0
        self.redis_errors = 0

    def _usable(self) -> bool:
        return time.monotonic() >= self._retry_at

    def _failed(self, exc: BaseException, op: str) -> None:
        self.redis_errors += 1
        if self._retry_at == 0.0 or time.monotonic() >= self._retry_at:
            log.warning("redis %s map failed during %s (%s); using local memory for %.0fs", self._p, op,
                        type(exc).__name__, self._retry_interval)
        self._retry_at = time.monotonic() + self._retry_interval

    async def get_many(self, names: Sequence[str]) -> list[str | None]:
        if not names:
            return []
        if self._usable():
            try:
                found = await self._redis.mget([self._p + n for n in names])
                return [v if v is not None else self._local.get_now(n) for n, v in zip(names, found)]
            except _ERRORS as exc:
                self._failed(exc, "read")
        return await self._local.get_many(names)

    async def set(self, name: str, value: str, ttl: float) -> None:
        if self._usable():
            try:
                await self._redis.set(self._p + name, value, px=max(1, int(ttl * 1000)))
                return
            except _ERRORS as exc:
                self._failed(exc, "write")
        self._local.set_now(name, value, ttl)

    async def delete(self, name: str) -> None:
        await self._local.delete(name)
        if self._usable():
            try:
                await self._redis.delete(self._p + name)
            except _ERRORS as exc:
                self._failed(exc, "delete")

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except _ERRORS:
            pass


def build_hot_map(link: RedisLink | None, prefix: str) -> HotMap:
    """Redis (through the process's link) when ``REDIS_URL`` is set, else process memory."""
    if link is None:
        return MemoryHotMap()
    hot = RedisHotMap(link.url, prefix, client=link.client())
    link.register(prefix.strip(":").replace("gg:", "") or prefix, hot)
    return hot
