"""``RedisSessionStore``: sessions shared by every replica, each operation one Lua script.

Layout under ``prefix`` (default ``gg:sess:``)::

    <chat_id>        hash    user, model, config (JSON), history (JSON), created, exp (epoch seconds)
    u:<user_id>      zset    the user's chat_ids scored by expiry: the per-user cap, least recently used first
    all              zset    every chat_id scored by expiry: the total cap
    lock:<chat_id>   string  lease held by the replica running the chat's current turn

Times travel as strings (``repr`` of the float) and are handed to Redis commands unchanged: Lua's number to
string conversion keeps only 14 digits. ``exp`` in the hash is the truth for expiry (so tests can drive it
with a fake clock, like the memory store); ``PEXPIRE`` only lets Redis reclaim what nobody touches again. The
zsets are pruned by score before every cap decision, so entries of sessions that Redis expired on its own do
not count. chat_ids are URL-safe tokens without ``:``, so they cannot collide with the
``u:``/``all``/``lock:`` names.

Unlike the key pool, sessions have no local fallback when Redis is down: a replica-local copy would fork a
conversation, and a chat started during the outage would vanish afterwards. Failures raise
:class:`StoreUnavailable` (the API answers 503 with Retry-After) and are logged once per outage.

Turns of one chat are serialised across replicas by a lease (``SET NX PX``) taken for the whole turn, on top
of a per-process lock so that waiters in one process do not poll Redis. The lease outlives the gateway's
request deadline, and it is released only by its holder (compare-and-delete).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .model import Session
from .store import KeyedLock, Limits, SessionLimitReached, StoreUnavailable

__all__ = ["RedisSessionStore", "redact_url"]

log = logging.getLogger("gateway.sessions")

_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

# Shared Lua: forget a session everywhere. Expects `prefix`, `cid`, `user` locals.
_FORGET = """
local function forget(prefix, key, cid, user)
  redis.call('DEL', key)
  if user then redis.call('ZREM', prefix .. 'u:' .. user, cid) end
  redis.call('ZREM', prefix .. 'all', cid)
end
local function keep(prefix, key, cid, user, exp, ttl_ms)
  redis.call('HSET', key, 'exp', exp)
  redis.call('PEXPIRE', key, ttl_ms)
  redis.call('ZADD', prefix .. 'u:' .. user, exp, cid)
  redis.call('PEXPIRE', prefix .. 'u:' .. user, ttl_ms)
  redis.call('ZADD', prefix .. 'all', exp, cid)
end
"""

# KEYS: session, user zset, all zset
# ARGV: now, exp, ttl_ms, max_per_user, max_total, prefix, chat_id, user, model, config, history, created
# Returns {1|0 (created | total cap reached), {evicted chat_ids...}}
_CREATE = _FORGET + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4]) + 1
if excess < 0 then excess = 0 end
if redis.call('ZCARD', KEYS[3]) - excess >= tonumber(ARGV[5]) then return {0, {}} end
local evicted = {}
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  for i = 1, #oldest do
    forget(ARGV[6], ARGV[6] .. oldest[i], oldest[i], ARGV[8])
    evicted[#evicted + 1] = oldest[i]
  end
end
redis.call('HSET', KEYS[1], 'user', ARGV[8], 'model', ARGV[9], 'config', ARGV[10], 'history', ARGV[11],
           'created', ARGV[12])
keep(ARGV[6], KEYS[1], ARGV[7], ARGV[8], ARGV[2], ARGV[3])
return {1, evicted}
"""

# KEYS: session. ARGV: now, exp, ttl_ms, prefix, chat_id. Returns the hash as a flat list, or nil.
_LOAD = _FORGET + """
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
if not f['user'] or not f['exp'] then redis.call('DEL', KEYS[1]) return false end
if tonumber(f['exp']) <= tonumber(ARGV[1]) then
  forget(ARGV[4], KEYS[1], ARGV[5], f['user'])
  return false
end
keep(ARGV[4], KEYS[1], ARGV[5], f['user'], ARGV[2], ARGV[3])
return h
"""

# KEYS: session. ARGV: now, exp, ttl_ms, prefix, chat_id, history. Returns 1 if saved, 0 if it is gone.
_SAVE = _FORGET + """
local f = redis.call('HMGET', KEYS[1], 'user', 'exp')
if not f[1] or not f[2] then return 0 end
if tonumber(f[2]) <= tonumber(ARGV[1]) then
  forget(ARGV[4], KEYS[1], ARGV[5], f[1])
  return 0
end
redis.call('HSET', KEYS[1], 'history', ARGV[6])
keep(ARGV[4], KEYS[1], ARGV[5], f[1], ARGV[2], ARGV[3])
return 1
"""

# KEYS: session. ARGV: now, prefix, chat_id. Returns 1 if a live session was removed.
_DELETE = _FORGET + """
local f = redis.call('HMGET', KEYS[1], 'user', 'exp')
if not f[1] then return 0 end
forget(ARGV[2], KEYS[1], ARGV[3], f[1])
if not f[2] or tonumber(f[2]) <= tonumber(ARGV[1]) then return 0 end
return 1
"""

# KEYS: all zset. ARGV: now, prefix, batch. Returns how many expired sessions were removed.
_SWEEP = _FORGET + """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #gone do
  local key = ARGV[2] .. gone[i]
  forget(ARGV[2], key, gone[i], redis.call('HGET', key, 'user'))
end
return #gone
"""

# KEYS: all zset. ARGV: now.
_COUNT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
"""

# KEYS: lock. ARGV: token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def redact_url(url: str) -> str:
    """host:port/db of a Redis URL, never its password."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class RedisSessionStore:
    def __init__(self, url: str, limits: Limits, *, prefix: str = "gg:sess:", lease: float = 320.0,
                 timeout: float = 2.0, client: aioredis.Redis | None = None, poll: float = 0.02) -> None:
        self.limits = limits
        self._redis: aioredis.Redis = client or aioredis.from_url(
            url, decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1))
        self._where = redact_url(url)
        self._p = prefix
        self._lease_ms = int(lease * 1000)
        self._poll = poll
        self._locks = KeyedLock()
        self._outage = False
        self.redis_errors = 0
        self._create = self._redis.register_script(_CREATE)
        self._load = self._redis.register_script(_LOAD)
        self._save = self._redis.register_script(_SAVE)
        self._delete = self._redis.register_script(_DELETE)
        self._sweep = self._redis.register_script(_SWEEP)
        self._count = self._redis.register_script(_COUNT)
        self._release = self._redis.register_script(_RELEASE)

    # -- plumbing --------------------------------------------------------------------------------------------

    def _exp(self, now: float) -> tuple[str, int]:
        return repr(now + self.limits.ttl), max(1, int(self.limits.ttl * 1000))

    def _failed(self, exc: BaseException) -> StoreUnavailable:
        self.redis_errors += 1
        if not self._outage:
            self._outage = True
            log.error("session store: Redis at %s failed (%s); session calls answer 500 until it is back",
                      self._where, type(exc).__name__)
        return StoreUnavailable(f"the session store is unavailable ({type(exc).__name__})")

    def _ok(self) -> None:
        if self._outage:
            self._outage = False
            log.warning("session store: Redis at %s is reachable again", self._where)

    # -- SessionStore ----------------------------------------------------------------------------------------

    async def create(self, session: Session, now: float) -> list[str]:
        exp, ttl_ms = self._exp(now)
        p = self._p
        try:
            created, evicted = await self._create(
                keys=[p + session.chat_id, f"{p}u:{session.user_id}", p + "all"],
                args=[repr(now), exp, ttl_ms, self.limits.max_per_user, self.limits.max_total, p,
                      session.chat_id, session.user_id, session.model, _dumps(session.generation_config),
                      _dumps(session.history), repr(session.created)])
        except _ERRORS as exc:
            raise self._failed(exc) from None
        self._ok()
        if not created:
            raise SessionLimitReached(f"the gateway holds its maximum of {self.limits.max_total} sessions")
        return list(evicted)

    async def load(self, chat_id: str, now: float) -> Session | None:
        exp, ttl_ms = self._exp(now)
        try:
            flat = await self._load(keys=[self._p + chat_id], args=[repr(now), exp, ttl_ms, self._p, chat_id])
        except _ERRORS as exc:
            raise self._failed(exc) from None
        self._ok()
        if not flat:
            return None
        f = dict(zip(flat[::2], flat[1::2], strict=True))
        return Session(chat_id=chat_id, user_id=f["user"], model=f.get("model", ""),
                       generation_config=orjson.loads(f.get("config") or "{}"),
                       history=orjson.loads(f.get("history") or "[]"), created=float(f.get("created") or 0.0))

    async def save_history(self, chat_id: str, history: list[dict[str, Any]], now: float) -> bool:
        exp, ttl_ms = self._exp(now)
        try:
            saved = await self._save(keys=[self._p + chat_id],
                                     args=[repr(now), exp, ttl_ms, self._p, chat_id, _dumps(history)])
        except _ERRORS as exc:
            raise self._failed(exc) from None
        self._ok()
        return bool(saved)

    async def delete(self, chat_id: str, now: float) -> bool:
        try:
            removed = await self._delete(keys=[self._p + chat_id], args=[repr(now), self._p, chat_id])
        except _ERRORS as exc:
            raise self._failed(exc) from None
        self._ok()
        return bool(removed)

    def lock(self, chat_id: str) -> AbstractAsyncContextManager[None]:
        return self._hold(chat_id)

    @asynccontextmanager
    async def _hold(self, chat_id: str) -> AsyncIterator[None]:
        async with self._locks.hold(chat_id):
            key, token = f"{self._p}lock:{chat_id}", secrets.token_hex(12)
            give_up = time.monotonic() + self._lease_ms / 1000.0 + 1.0  # any holder's lease lapsed by then
            try:
                while not await self._redis.set(key, token, nx=True, px=self._lease_ms):
                    if time.monotonic() > give_up:
                        raise StoreUnavailable("timed out waiting for the chat's previous message")
                    await asyncio.sleep(self._poll)
            except _ERRORS as exc:
                raise self._failed(exc) from None
            try:
                yield
            finally:
                try:
                    await self._release(keys=[key], args=[token])
                except _ERRORS as exc:  # the lease lapses by itself; the turn's result stands
                    self._failed(exc)

    async def count(self, now: float) -> int:
        try:
            return int(await self._count(keys=[self._p + "all"], args=[repr(now)]))
        except _ERRORS as exc:
            raise self._failed(exc) from None

    async def sweep(self, now: float) -> int:
        try:
            return int(await self._sweep(keys=[self._p + "all"], args=[repr(now), self._p, 500]))
        except _ERRORS as exc:
            raise self._failed(exc) from None

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except _ERRORS:
            pass
