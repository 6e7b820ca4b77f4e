"""Client-token enforcement: ``check(token, model) -> Decision`` before a call, ``record(token, tokens)`` after.

One small interface for every surface. ``check`` answers, in this order: 401 for a disabled or expired token,
403 for a model outside its allowlist, 429 (with ``retry_after``) for a spent limit; an allowed call is
counted against the request limits and holds one concurrency slot until ``record`` returns it with the tokens
the call used. Windows are fixed (the UTC minute and day), so ``retry_after`` is the time to the window's end.

Counters live in the hot store: process memory, or Redis with ``REDIS_URL``, so the limits hold across
replicas instead of multiplying with them. In Redis mode a limited call costs one round trip: ``check`` is one
Lua script that first applies this process's pending settlements and then checks and counts, atomically;
``record`` never waits on Redis (its settlement rides on the next check, or a background write: at once for
a freed concurrency slot, within ``flush_interval`` for tokens). Bounds (docs/architecture.md, "State"):
rpm, rpd and concurrency are never exceeded; a freed slot is seen by other replicas one background round trip
later (a refusal meanwhile is possible, an excess is not); a call's tokens reach the shared tpm/tpd counters
within ``flush_interval``, so calls admitted elsewhere during that time can overshoot those by their own
use. While the process's ``RedisLink`` is not healthy, counting falls back to memory (each replica then
enforces the limits alone); settlements owed to Redis wait for it. Unlimited tokens cost one attribute read
and no counter at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .policy import Limits, TokenPolicy
from .redis_batch import ScriptBatcher
from .redis_link import RedisLink

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


# Applies this replica's batched settlements. KEYS[o+1..o+m]: token-window counters to add to; then r
# concurrency counters to release. ARGV[a]: m, ARGV[a+1]: r, then m amounts, m TTLs, r release counts.
_APPLY = """
local function apply(o, a)
  local m, r = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  for j = 1, m do
    redis.call('INCRBY', KEYS[o + j], ARGV[a + 1 + j])
    redis.call('EXPIRE', KEYS[o + j], ARGV[a + 1 + m + j])
  end
  for j = 1, r do
    local k = KEYS[o + m + j]
    local n = math.min(tonumber(redis.call('GET', k) or '0'), tonumber(ARGV[a + 1 + 2 * m + j]))
    if n > 0 then redis.call('DECRBY', k, n) end
  end
end
"""

# KEYS: rpm, rpd, tpm, tpd, concurrent windows, then the settlements' keys. ARGV: the five limits (-1 = none),
# their five TTLs, then the settlements (see _APPLY). Settles first (a slot this replica freed counts as free),
# then checks and counts, all in one step: the request's one round trip.
_TAKE = _APPLY + """
apply(5, 11)
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
_SETTLE = _APPLY + """
apply(0, 1)
return 0
"""


class _Pending:
    """Settlements not yet in Redis: tokens per window counter, freed slots per concurrency counter."""

    def __init__(self) -> None:
        self.add: dict[str, list[int]] = {}   # key -> [amount, ttl]
        self.release: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self.add or self.release)

    def merge(self, other: _Pending) -> None:
        for key, (amount, ttl) in other.add.items():
            self.add.setdefault(key, [0, ttl])[0] += amount
        for key, n in other.release.items():
            self.release[key] = self.release.get(key, 0) + n

    def wire(self) -> tuple[list[str], list[int]]:
        """(keys, args) in _APPLY's layout."""
        adds, rels = list(self.add.items()), list(self.release.items())
        keys = [k for k, _ in adds] + [k for k, _ in rels]
        args = [len(adds), len(rels), *(v[0] for _, v in adds), *(v[1] for _, v in adds), *(n for _, n in rels)]
        return keys, args


class TokenLimiter:
    """Admission and limits for client tokens; see the module docstring."""

    def __init__(self, redis_url: str | None = None, clock: Callable[[], float] = time.time,
                 client: Any = None, link: RedisLink | None = None, flush_interval: float = 0.5) -> None:
        self._clock = clock
        self._memory = _MemoryCounters()
        self._link = link
        self._own_link = False
        if redis_url and link is None:
            self._link, self._own_link = RedisLink(redis_url), True
        self._redis = client
        if self._link is not None:
            self._link.register("token_limits")
            if self._redis is None:
                self._redis = self._link.client(decode=False)
            # Checks and settlements of concurrent calls share one pipeline (each script still atomic).
            self._batch = ScriptBatcher(self._redis)
            self._take = self._batch.script(_TAKE)
            self._settle = self._batch.script(_SETTLE)
        self._flush_interval = flush_interval
        self._pending = _Pending()
        self._held: dict[str, int] = {}  # token id -> concurrency slots this process holds in Redis
        self._urgent = asyncio.Event()   # a freed slot waits for no batch
        self._flusher: asyncio.Task[None] | None = None
        self.round_trips = 0
        # token id -> (minute, limits, window keys, limit args): rebuilt once a minute, not per request.
        self._prepared: dict[str, tuple[int, Limits, tuple[str, ...], list[int]]] = {}

    @property
    def redis_errors(self) -> int:
        return self._link.errors.get("token_limits", 0) if self._link is not None else 0

    def _prepare(self, token: TokenPolicy, now: float) -> tuple[tuple[str, ...], list[int]]:
        minute = int(now // MINUTE)
        entry = self._prepared.get(token.id)
        if entry is None or entry[0] != minute or entry[1] is not token.limits:
            if len(self._prepared) > 10_000:
                self._prepared.clear()
            entry = self._prepared[token.id] = (minute, token.limits, _window_keys(token.id, now),
                                                _limit_args(token.limits))
        return entry[2], entry[3]

    def _shared(self) -> bool:
        return self._link is not None and self._link.usable()

    async def check(self, token: TokenPolicy, model: str) -> Decision:
        now = self._clock()
        refused = admission(token, model, now)
        if refused is not None:
            return refused
        limits = token.limits
        if not limits.any:
            return ALLOW
        keys, args = self._prepare(token, now)
        which = await self._run_take(token, keys, args, now)
        return ALLOW if which == 0 else _refusal(which, limits, now)

    async def _run_take(self, token: TokenPolicy, keys: tuple[str, ...], args: list[int], now: float) -> int:
        if self._shared():
            carried, self._pending = self._pending, _Pending()
            extra_keys, extra_args = carried.wire()
            try:
                self.round_trips += 1
                which = int(await self._take(keys=[*keys, *extra_keys],
                                             args=[*args, MINUTE + 5, DAY + 5, 0, 0, _CONCURRENT_TTL, *extra_args]))
            except Exception as exc:  # noqa: BLE001 - any Redis failure falls back to local counting
                self._pending.merge(carried)
                self._redis_failed(exc, "take")
            else:
                if which == 0 and args[4] >= 0:
                    self._held[token.id] = self._held.get(token.id, 0) + 1
                return which
        return self._memory.take(keys, args, now)

    async def record(self, token: TokenPolicy, tokens: int = 0) -> None:
        """The call admitted by ``check`` ended having used ``tokens`` tokens: count them, free its slot. In
        Redis mode nothing waits here: the settlement rides on this process's next check or a background
        write (at once for a freed slot, within ``flush_interval`` for tokens)."""
        limits = token.limits
        if not limits.any:
            return
        now = self._clock()
        keys, args = self._prepare(token, now)
        held = self._held.get(token.id, 0)
        release_shared = args[4] >= 0 and held > 0  # the slot was taken in Redis: give it back there
        if release_shared:
            self._held[token.id] = held - 1
            self._pending.release[keys[4]] = self._pending.release.get(keys[4], 0) + 1
            self._urgent.set()
        local_tokens = int(tokens)
        if local_tokens > 0 and self._shared():
            for i, ttl in ((2, MINUTE + 5), (3, DAY + 5)):
                if args[i] >= 0:
                    self._pending.add.setdefault(keys[i], [0, ttl])[0] += local_tokens
            local_tokens = 0
        if self._pending:
            self._start_flusher()
        release_local = args[4] >= 0 and not release_shared
        if local_tokens > 0 or release_local:
            self._memory.settle(keys, [*args[:4], args[4] if release_local else -1], local_tokens, now)

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(), name="token-limits-flush")

    async def _flush_loop(self) -> None:
        """Write pending settlements: a freed slot at once, tokens within ``flush_interval``; during an
        outage they wait for the link (a slot held in Redis must be given back there)."""
        assert self._link is not None
        while self._pending:
            if not self._pending.release:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), self._flush_interval)
            self._urgent.clear()
            if not self._link.usable():
                await self._link.wait_healthy()
            await self.flush()
            if self._pending and not self._link.usable():
                continue  # failed: wait for the link again
        self._urgent.clear()

    async def flush(self) -> None:
        """One round trip with every pending settlement (kept for the next try if Redis fails)."""
        if not self._pending or self._link is None:
            return
        carried, self._pending = self._pending, _Pending()
        keys, args = carried.wire()
        try:
            self.round_trips += 1
            await self._settle(keys=keys, args=args)
        except Exception as exc:  # noqa: BLE001
            self._pending.merge(carried)
            self._redis_failed(exc, "settle")

    def _redis_failed(self, exc: BaseException, op: str) -> None:
        assert self._link is not None
        self._link.failed("token_limits", exc, op)

    async def close(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            if self._shared():
                self._urgent.set()
                await asyncio.wait((flusher,), timeout=2.0)
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        if self._shared():
            await self.flush()
        if self._link is not None:
            await self._batch.close()
        if self._own_link and self._link is not None:
            await self._link.close()
