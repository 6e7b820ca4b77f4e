"""The per-user send_message limit: at most ``limit`` accepted calls in any ``window`` seconds.

A sliding window log rather than a token bucket, because the contract is worded as "at most 2 calls per
second" and a log enforces exactly that: three calls within one second always meet a refusal, however they are
spread, which also makes the behaviour testable without timing assumptions. Only accepted calls are logged:
a refused call does not consume budget, so a client that retries after ``Retry-After`` gets through.

``USER_RATE_LIMIT`` (calls per second) becomes ``limit``/``window`` in :func:`window_for`: rates of 1 or more
count over one second (a fractional part is rounded), slower rates allow one call per ``1/rate`` seconds.

Both limiters take ``now`` from the caller (epoch seconds) so tests drive them with a fake clock. The Redis
one does the whole check-and-record in one Lua script, so replicas share one budget per user (the Redis
session store runs the same check inside its one ``begin`` script: ``user_key`` and ``acquire_args`` are
shared with it); while the process's ``RedisLink`` is not healthy it counts in a local limiter, so an
outage costs no timeouts on the request path: a limit that protects the pool must not turn a Redis outage
into 500s.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections import deque
from typing import Protocol

import redis.asyncio as aioredis

from app.state.redis_link import ERRORS as _ERRORS
from app.state.redis_link import RedisLink

__all__ = ["MemoryRateLimiter", "RateLimiter", "RedisRateLimiter", "window_for"]

log = logging.getLogger("gateway.sessions")


def window_for(rate: float) -> tuple[int, float]:
    """``(limit, window_seconds)`` for a rate in calls per second."""
    if rate <= 0 or not math.isfinite(rate):
        raise ValueError("rate must be a positive number")
    if rate >= 1:
        return max(1, round(rate)), 1.0
    return 1, 1.0 / rate


class RateLimiter(Protocol):
    limit: int
    window: float

    async def acquire(self, user_id: str, now: float) -> float | None:
        """Record one call and return ``None`` if it is allowed; otherwise record nothing and return the
        seconds until a call would be allowed (> 0)."""
        ...

    async def sweep(self, now: float) -> None:
        """Forget users with no call inside the window (memory only grows with active users)."""
        ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._calls: dict[str, deque[float]] = {}

    async def acquire(self, user_id: str, now: float) -> float | None:
        return self.acquire_now(user_id, now)

    def acquire_now(self, user_id: str, now: float) -> float | None:
        calls = self._calls.get(user_id)
        if calls is None:
            calls = self._calls[user_id] = deque()
        horizon = now - self.window
        while calls and calls[0] <= horizon:
            calls.popleft()
        if len(calls) < self.limit:
            calls.append(now)
            return None
        return calls[0] + self.window - now

    async def sweep(self, now: float) -> None:
        horizon = now - self.window
        for user in [u for u, calls in self._calls.items() if not calls or calls[-1] <= horizon]:
            del self._calls[user]

    async def close(self) -> None:
        self._calls.clear()


# KEYS: the user's log (zset of call times). ARGV: now, horizon (now - window), limit, member, window_ms.
# Returns {1, "0"} when allowed, {0, "<oldest call time>"} when refused (strings: Lua numbers would become
# integers).
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {1, '0'}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, oldest[2]}
"""


class RedisRateLimiter:
    def __init__(self, url: str, limit: int, window: float, *, prefix: str = "gg:rl:", timeout: float = 0.5,
                 retry_interval: float = 1.0, client: aioredis.Redis | None = None,
                 link: RedisLink | None = None) -> None:
        self.limit = limit
        self.window = window
        self._own_link = link is None
        self._link = link if link is not None else RedisLink(url, retry_interval=retry_interval)
        self._link.register("rate_limit")
        self._redis: aioredis.Redis = client or self._link.client(timeout=timeout)
        self.prefix = prefix
        self._script = self._redis.register_script(_ACQUIRE)
        self.window_ms = max(1, math.ceil(window * 1000))
        self._local = MemoryRateLimiter(limit, window)

    @property
    def redis_errors(self) -> int:
        return self._link.errors.get("rate_limit", 0)

    def user_key(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}"

    def acquire_args(self, now: float) -> list[str | int]:
        """now, horizon, limit, a unique member, window_ms: _ACQUIRE's ARGV."""
        member = f"{now!r}-{secrets.token_hex(4)}"  # unique: two calls in the same microsecond both count
        return [repr(now), repr(now - self.window), self.limit, member, self.window_ms]

    def refused_wait(self, oldest: str | float, now: float) -> float:
        return max(float(oldest) + self.window - now, 0.001)

    async def acquire(self, user_id: str, now: float) -> float | None:
        if not self._link.usable():
            return self._local.acquire_now(user_id, now)
        try:
            allowed, oldest = await self._script(keys=[self.user_key(user_id)], args=self.acquire_args(now))
        except _ERRORS as exc:
            self._link.failed("rate_limit", exc, "acquire")
            return self._local.acquire_now(user_id, now)
        if int(allowed):
            return None
        return self.refused_wait(oldest, now)

    async def sweep(self, now: float) -> None:
        await self._local.sweep(now)

    async def close(self) -> None:
        if self._own_link:
            await self._link.close()
