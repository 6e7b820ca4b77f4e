"""A small expiring string map in the hot store: process memory, or Redis shared by replicas.

Resource owners and conversation bindings are both "name -> short value, forgotten after a while"; one map
type serves both so each costs one round trip per lookup (``MGET``/``SET PX``) and nothing that grows with
the pool; with a local read cache (owners, bindings) a hot name costs none. Redis failures never reach a
request: the map falls back to local memory while the process's ``RedisLink`` is not healthy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import redis.asyncio as aioredis

from app.state.redis_link import ERRORS as _ERRORS
from app.state.redis_link import RedisLink

__all__ = ["HotMap", "MemoryHotMap", "RedisHotMap", "build_hot_map"]

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
    """The map in Redis under ``prefix``, read through a short local cache; local memory while Redis is away.

    ``cache_ttl`` > 0: a value read from (or written to) Redis is served locally for that many seconds before
    Redis is asked again, so a hot name costs no round trip; that is the map's staleness bound for changes
    made by other replicas (a value absent here is always asked of Redis: a binding or owner created elsewhere
    is seen at once). ``write_behind``: ``set`` updates the local cache at once and leaves the Redis write to
    a background writer (one pipelined round trip for all the writes made meanwhile), for values whose
    sharing may lag by a round trip (conversation bindings). Whether Redis is usable is the ``RedisLink``'s
    state; while it is not, the map reads and writes local memory only and counts nothing.
    """

    def __init__(self, url: str, prefix: str, *, link: RedisLink | None = None,
                 client: aioredis.Redis | None = None, timeout: float = 0.5, retry_interval: float = 1.0,
                 name: str | None = None, cache_ttl: float = 0.0, write_behind: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._own_link = link is None
        self._link = link if link is not None else RedisLink(url, retry_interval=retry_interval)
        self._name = name or prefix.strip(":").replace("gg:", "") or prefix
        self._link.register(self._name)
        self._redis: aioredis.Redis = client or self._link.client(timeout=timeout)
        self._p = prefix
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._local = MemoryHotMap(clock)       # values written here, and values read from Redis
        self._fresh: dict[str, float] = {}      # name -> until when its local value may stand in for Redis's
        self._unsynced: set[str] = set()        # written while Redis was away: local wins over Redis's absence
        self._write_behind = write_behind
        self._pending: dict[str, tuple[str, float]] = {}
        self._writer: asyncio.Task[None] | None = None
        self.round_trips = 0

    @property
    def redis_errors(self) -> int:
        return self._link.errors.get(self._name, 0)

    def _failed(self, exc: BaseException, op: str) -> None:
        self._link.failed(self._name, exc, op)

    def _cache(self, name: str, value: str, ttl: float) -> None:
        self._local.set_now(name, value, ttl)
        if self._cache_ttl > 0:
            if len(self._fresh) > _SWEEP_EVERY * 4:
                now = self._clock()
                self._fresh = {k: t for k, t in self._fresh.items() if t > now}
            self._fresh[name] = self._clock() + self._cache_ttl

    async def get_many(self, names: Sequence[str]) -> list[str | None]:
        if not names:
            return []
        out: list[str | None] = [None] * len(names)
        ask: list[int] = []
        now = self._clock()
        for i, name in enumerate(names):
            fresh = self._fresh.get(name, 0.0) > now or name in self._pending  # (a write on its way wins)
            if fresh and (value := self._local.get_now(name)) is not None:
                out[i] = value
            else:
                ask.append(i)
        if not ask:
            return out
        if self._link.usable():
            # Written here and not yet there (the writer may finish while MGET is on its way): local wins.
            mine = {names[i] for i in ask if names[i] in self._unsynced or names[i] in self._pending}
            if self._unsynced:
                self._resync()
            try:
                self.round_trips += 1
                found = await self._redis.mget([self._p + names[i] for i in ask])
            except _ERRORS as exc:
                self._failed(exc, "read")
            else:
                for i, value in zip(ask, found):
                    name = names[i]
                    if value is not None:
                        out[i] = value
                        self._cache(name, value, self._cache_ttl or 0.001)
                    elif name in mine:
                        out[i] = self._local.get_now(name)
                return out
        for i in ask:
            out[i] = self._local.get_now(names[i])
        return out

    async def set(self, name: str, value: str, ttl: float) -> None:
        self._cache(name, value, ttl)
        if self._write_behind:
            self._pending[name] = (value, ttl)
            self._kick()
            return
        if self._link.usable():
            if self._unsynced:
                self._resync()
            try:
                self.round_trips += 1
                await self._redis.set(self._p + name, value, px=max(1, int(ttl * 1000)))
                self._unsynced.discard(name)
                return
            except _ERRORS as exc:
                self._failed(exc, "write")
        self._unsynced.add(name)

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending(), name="hotmap-writer")

    def _resync(self) -> None:
        """Redis is usable again: queue what was written only locally meanwhile (an owner recorded during an
        outage must reach the other replicas), with the time it has left."""
        now = self._clock()
        for name in list(self._unsynced):
            entry = self._local._data.get(name)
            if entry is not None and entry[1] > now and name not in self._pending:
                self._pending[name] = (entry[0], entry[1] - now)
        self._unsynced.clear()
        if self._pending:
            self._kick()

    async def _write_pending(self) -> None:
        """Write what ``set`` left pending, one pipeline per batch; during an outage they stay local."""
        while self._pending:
            if not self._link.usable():
                self._unsynced.update(self._pending)
                self._pending.clear()
                return
            batch, self._pending = self._pending, {}
            try:
                self.round_trips += 1
                async with self._redis.pipeline(transaction=False) as pipe:
                    for name, (value, ttl) in batch.items():
                        pipe.set(self._p + name, value, px=max(1, int(ttl * 1000)))
                    await pipe.execute()
            except _ERRORS as exc:
                self._failed(exc, "write")
                self._unsynced.update(batch)
                return
            self._unsynced.difference_update(batch)

    async def delete(self, name: str) -> None:
        await self._local.delete(name)
        self._fresh.pop(name, None)
        self._pending.pop(name, None)
        self._unsynced.discard(name)
        if self._link.usable():
            try:
                self.round_trips += 1
                await self._redis.delete(self._p + name)
            except _ERRORS as exc:
                self._failed(exc, "delete")

    async def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            await asyncio.wait((self._writer,), timeout=2.0)
        if self._own_link:
            await self._link.close()


def build_hot_map(link: RedisLink | None, prefix: str, *, cache_ttl: float = 0.0,
                  write_behind: bool = False) -> HotMap:
    """Redis (through the process's link) when ``REDIS_URL`` is set, else process memory."""
    if link is None:
        return MemoryHotMap()
    return RedisHotMap(link.url, prefix, link=link, cache_ttl=cache_ttl, write_behind=write_behind)
