"""Client-token enforcement: ``check(token, model) -> Decision`` before a call, ``record(token, tokens)`` after.

One small interface for every surface. ``check`` answers, in this order: 401 for a disabled or expired token,
403 for a model outside its allowlist, 429 (with ``retry_after``) for a spent limit; an allowed call is
counted against the request limits and holds one concurrency slot until ``record`` returns it with the tokens
the call used. Windows are fixed (the UTC minute and day), so ``retry_after`` is the time to the window's end.

Counters live in the hot store: process memory, or Redis with ``REDIS_URL`` (one Lua call per check, so the
limits hold across replicas instead of multiplying with them). If Redis fails, counting falls back to memory
for that call: logged, never a 500. Unlimited tokens cost one attribute read and no counter at all.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .policy import Limits, TokenPolicy

__all__ = ["ALLOW", "Decision", "TokenLimiter"]

log = logging.getLogger("gateway.limits")

MINUTE, DAY = 60, 86400
_CONCURRENT_TTL = 3600  # a crashed replica's slots free themselves after this


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    status: int = 200
    code: str = ""            # a machine-readable reason: token_disabled, token_expired, model_not_allowed, ...
    message: str = ""
    retry_after: float | None = None


ALLOW = Decision(True)
_WHICH = {1: ("rpm", "requests per minute", MINUTE), 2: ("rpd", "requests per day", DAY),
          3: ("tpm", "tokens per minute", MINUTE), 4: ("tpd", "tokens per day", DAY),
          5: ("concurrent", "concurrent requests", 0)}


def _window_keys(token_id: str, now: float) -> tuple[str, str, str, str, str]:
    minute, day = int(now // MINUTE), int(now // DAY)
    base = f"gw:lim:{token_id}:"
    return (f"{base}rm:{minute}", f"{base}rd:{day}", f"{base}tm:{minute}", f"{base}td:{day}", f"{base}c")


def _limit_args(limits: Limits) -> list[int]:
    return [-1 if v is None else int(v) for v in (limits.rpm, limits.rpd, limits.tpm, limits.tpd,
                                                   limits.concurrent)]


def _refusal(which: int, limits: Limits, now: float) -> Decision:
    name, words, window = _WHICH[which]
    retry = float(max(1, math.ceil(window - now % window))) if window else 1.0
    value = getattr(limits, name)
    return Decision(False, 429, f"token_{name}_limit",
                    f"this token's limit of {value} {words} is reached; retry in {retry:.0f} s", retry)


def admission(token: TokenPolicy, model: str, now: float) -> Decision | None:
    """The checks that need no counter: state, expiry, model allowlist. None = go on to the limits."""
    if not token.enabled:
        return Decision(False, 401, "token_disabled", "this token is disabled")
    if token.expired(now):
        return Decision(False, 401, "token_expired", "this token has expired")
    if not token.allows_model(model):
        return Decision(False, 403, "model_not_allowed", f"this token may not use the model '{model}'")
    return None


class _MemoryCounters:
    """Window counters in a dict; stale windows are dropped when the dict grows."""

    def __init__(self) -> None:
        self._values: dict[str, int] = {}
        self._expiry: dict[str, float] = {}

    def take(self, keys: tuple[str, ...], args: list[int], now: float) -> int:
        values = self._values
        for i in range(4):
            if args[i] >= 0:
                used = values.get(keys[i], 0)
                if (used + 1 > args[i]) if i < 2 else (used >= args[i]):
                    return i + 1
        if args[4] >= 0 and values.get(keys[4], 0) + 1 > args[4]:
            return 5
        for i in (0, 1, 4):
            if args[i] >= 0:
                self._add(keys[i], 1, now + (MINUTE, DAY, 0, 0, _CONCURRENT_TTL)[i])
        return 0

    def settle(self, keys: tuple[str, ...], args: list[int], tokens: int, now: float) -> None:
        if tokens > 0:
            for i, ttl in ((2, MINUTE), (3, DAY)):
                if args[i] >= 0:
                    self._add(keys[i], tokens, now + ttl)
        if args[4] >= 0 and self._values.get(keys[4], 0) > 0:
            self._values[keys[4]] -= 1

    def _add(self, key: str, amount: int, expires: float) -> None:
        self._values[key] = self._values.get(key, 0) + amount
        self._expiry.setdefault(key, expires)
        if len(self._expiry) > 10_000:
            now = time.time()
            for k in [k for k, t in self._expiry.items() if t <= now]:
                self._expiry.pop(k, None)
                self._values.pop(k, None)


# KEYS: rpm, rpd, tpm, tpd, concurrent windows. ARGV: the five limits (-1 = none), then their TTLs.
_TAKE = """
local function used(k) return tonumber(redis.call('GET', k) or '0') end
for i = 1, 2 do
  local lim = tonumber(ARGV[i])
  if lim >= 0 and used(KEYS[i]) + 1 > lim then return i end
end
for i = 3, 4 do
  local lim = tonumber(ARGV[i])
  if lim >= 0 and used(KEYS[i]) >= lim then return i end
end
local c = tonumber(ARGV[5])
if c >= 0 and used(KEYS[5]) + 1 > c then return 5 end
for _, i in ipairs({1, 2, 5}) do
  if tonumber(ARGV[i]) >= 0 then
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ARGV[5 + i])
  end
end
return 0
"""
_SETTLE = """
local tokens = tonumber(ARGV[6])
if tokens > 0 then
  for _, i in ipairs({3, 4}) do
    if tonumber(ARGV[i]) >= 0 then
      redis.call('INCRBY', KEYS[i], tokens)
      redis.call('EXPIRE', KEYS[i], ARGV[6 + i - 2])
    end
  end
end
if tonumber(ARGV[5]) >= 0 and tonumber(redis.call('GET', KEYS[5]) or '0') > 0 then
  redis.call('DECR', KEYS[5])
end
return 0
"""


class TokenLimiter:
    """Admission and limits for client tokens; see the module docstring."""

    def __init__(self, redis_url: str | None = None, clock: Callable[[], float] = time.time,
                 client: Any = None) -> None:
        self._clock = clock
        self._memory = _MemoryCounters()
        self._redis = client
        if redis_url and client is None:
            from redis.asyncio import Redis
            self._redis = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        if self._redis is not None:
            self._take = self._redis.register_script(_TAKE)
            self._settle = self._redis.register_script(_SETTLE)
        self.redis_errors = 0
        # token id -> (minute, limits, window keys, limit args): rebuilt once a minute, not per request.
        self._prepared: dict[str, tuple[int, Limits, tuple[str, ...], list[int]]] = {}

    def _prepare(self, token: TokenPolicy, now: float) -> tuple[tuple[str, ...], list[int]]:
        minute = int(now // MINUTE)
        entry = self._prepared.get(token.id)
        if entry is None or entry[0] != minute or entry[1] is not token.limits:
            if len(self._prepared) > 10_000:
                self._prepared.clear()
            entry = self._prepared[token.id] = (minute, token.limits, _window_keys(token.id, now),
                                                _limit_args(token.limits))
        return entry[2], entry[3]

    async def check(self, token: TokenPolicy, model: str) -> Decision:
        now = self._clock()
        refused = admission(token, model, now)
        if refused is not None:
            return refused
        limits = token.limits
        if not limits.any:
            return ALLOW
        keys, args = self._prepare(token, now)
        which = await self._run_take(keys, args, now)
        return ALLOW if which == 0 else _refusal(which, limits, now)

    async def record(self, token: TokenPolicy, tokens: int = 0) -> None:
        """The call admitted by ``check`` ended having used ``tokens`` tokens: count them, free its slot."""
        limits = token.limits
        if not limits.any:
            return
        now = self._clock()
        keys, args = self._prepare(token, now)
        if self._redis is not None:
            try:
                await self._settle(keys=list(keys), args=[*args, int(tokens), MINUTE + 5, DAY + 5])
                return
            except Exception as exc:  # noqa: BLE001 - any Redis failure falls back to local counting
                self._redis_failed(exc)
        self._memory.settle(keys, args, int(tokens), now)

    async def _run_take(self, keys: tuple[str, ...], args: list[int], now: float) -> int:
        if self._redis is not None:
            try:
                return int(await self._take(keys=list(keys), args=[*args, MINUTE + 5, DAY + 5, 0, 0,
                                                                    _CONCURRENT_TTL]))
            except Exception as exc:  # noqa: BLE001
                self._redis_failed(exc)
        return self._memory.take(keys, args, now)

    def _redis_failed(self, exc: BaseException) -> None:
        self.redis_errors += 1
        log.warning("token limits: Redis unavailable (%s); counting in this process", type(exc).__name__)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
