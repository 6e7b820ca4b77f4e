"""``RedisSessionStore``: sessions shared by every replica, each operation one Lua script.

Layout under ``prefix`` (default ``gg:sess:``)::

    <chat_id>        hash    user, model, config (JSON), history (JSON), created, exp (epoch seconds),
                             ver (saved turns), turns (JSON: the last few turn ids with their answers)
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

Turns of one chat are serialised across replicas by a short lease (``SET NX PX``, ``lease`` seconds, renewed
every third of that while the turn runs; ``lease.py``), on top of a per-process lock so that waiters in one
process do not poll Redis. Waiting is bounded by ``wait`` seconds. The lease is released only by its holder
(compare-and-delete) and renewed only by it (compare-and-expire).

A save is one script that checks, in this order, that it is not too late (Redis's own ``TIME`` against a
deadline the caller computed: a save that Redis runs after the caller stopped waiting for its answer is
refused, so a turn answered 503 during a stall is never stored later), that the caller's token still holds the
lease (fencing), and that the history's version is the one the turn read (compare-and-set). When the answer to
a save is lost (a connection error after sending), the store asks Redis whether that turn's id was stored,
until Redis's clock is past the deadline, so the answer it gives is the truth whenever Redis comes back within
``lease`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .lease import ChatBusy, Lease, Saved
from .model import Session, TurnRecord
from .store import KeyedLock, Limits, SessionLimitReached, StoreUnavailable
from .turns import KEEP_TURNS

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

_NOW_MS = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: session, lock.
# ARGV: now, exp, ttl_ms, prefix, chat_id, history, token, expect, deadline_ms,
#       turn ([id, digest, answer]), keep
# Returns 1 saved, 0 gone, -1 too late, -2 lease lost, -3 stale version.
_SAVE = _FORGET + _NOW_MS + """
if now_ms() > tonumber(ARGV[9]) then return -1 end
if redis.call('GET', KEYS[2]) ~= ARGV[7] then return -2 end
local f = redis.call('HMGET', KEYS[1], 'user', 'exp', 'ver')
if not f[1] or not f[2] then return 0 end
if tonumber(f[2]) <= tonumber(ARGV[1]) then
  forget(ARGV[4], KEYS[1], ARGV[5], f[1])
  return 0
end
if (tonumber(f[3]) or 0) ~= tonumber(ARGV[8]) then return -3 end
local turns = cjson.decode(redis.call('HGET', KEYS[1], 'turns') or '[]')
turns[#turns + 1] = cjson.decode(ARGV[10])
local kept = {}
for i = math.max(1, #turns - tonumber(ARGV[11]) + 1), #turns do kept[#kept + 1] = turns[i] end
redis.call('HSET', KEYS[1], 'history', ARGV[6], 'ver', tonumber(ARGV[8]) + 1, 'turns', cjson.encode(kept))
keep(ARGV[4], KEYS[1], ARGV[5], f[1], ARGV[2], ARGV[3])
return 1
"""

# KEYS: session. ARGV: turn_id, deadline_ms.
# Returns {1 if that turn is stored, 1 if Redis is past the deadline}.
_SETTLED = _NOW_MS + """
local past = 0
if now_ms() > tonumber(ARGV[2]) then past = 1 end
local turns = redis.call('HGET', KEYS[1], 'turns')
if turns then
  for _, t in ipairs(cjson.decode(turns)) do
    if t[1] == ARGV[1] then return {1, past} end
  end
end
return {0, past}
"""

# KEYS: lock. ARGV: token, lease_ms. Returns {1|0 (taken), Redis's clock in ms}.
_ACQUIRE = _NOW_MS + """
local taken = 0
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then taken = 1 end
return {taken, now_ms()}
"""

# KEYS: lock. ARGV: token, lease_ms. Returns 1 if renewed, 0 if the token no longer holds the lease.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
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


_SAVE_CODES = {1: Saved.SAVED, 0: Saved.GONE, -1: Saved.LOST, -2: Saved.LOST, -3: Saved.STALE}


def redact_url(url: str) -> str:
    """host:port/db of a Redis URL, never its password."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class RedisSessionStore:
    def __init__(self, url: str, limits: Limits, *, prefix: str = "gg:sess:", lease: float = 5.0,
                 wait: float = 5.0, timeout: float = 2.0, client: aioredis.Redis | None = None,
                 poll: float = 0.05) -> None:
        self.limits = limits
        self.wait = wait
        self._redis: aioredis.Redis = client or aioredis.from_url(
            url, decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1))
        self._where = redact_url(url)
        self._p = prefix
        self._lease = lease
        self._lease_ms = max(1, int(lease * 1000))
        # A save must run in Redis within half the socket timeout of being sent, so its answer (if any) is
        # back before the caller gives up on it: what runs later is refused.
        self._save_budget_ms = timeout * 500.0
        self._poll = poll
        self._locks = KeyedLock()
        self._renewers: set[asyncio.Task[None]] = set()
        self._outage = False
        self.redis_errors = 0
        self._create = self._redis.register_script(_CREATE)
        self._load = self._redis.register_script(_LOAD)
        self._save = self._redis.register_script(_SAVE)
        self._settled = self._redis.register_script(_SETTLED)
        self._delete = self._redis.register_script(_DELETE)
        self._sweep = self._redis.register_script(_SWEEP)
        self._count = self._redis.register_script(_COUNT)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    # -- plumbing --------------------------------------------------------------------------------------------

    def _exp(self, now: float) -> tuple[str, int]:
        return repr(now + self.limits.ttl), max(1, int(self.limits.ttl * 1000))

    def _failed(self, exc: BaseException) -> StoreUnavailable:
        self.redis_errors += 1
        if not self._outage:
            self._outage = True
            log.error("session store: Redis at %s failed (%s); session calls answer 503 until it is back",
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
                       history=orjson.loads(f.get("history") or "[]"), created=float(f.get("created") or 0.0),
                       version=int(f.get("ver") or 0),
                       turns=[TurnRecord(*t) for t in orjson.loads(f.get("turns") or "[]")])

    async def save_history(self, chat_id: str, history: list[dict[str, Any]], now: float, *, lease: Lease,
                           expect: int, turn: TurnRecord) -> Saved:
        if lease.lost:
            return Saved.LOST
        exp, ttl_ms = self._exp(now)
        deadline = time.time() * 1000.0 + lease.clock_offset_ms + self._save_budget_ms
        try:
            code = int(await self._save(
                keys=[self._p + chat_id, f"{self._p}lock:{chat_id}"],
                args=[repr(now), exp, ttl_ms, self._p, chat_id, _dumps(history), lease.token, expect,
                      repr(deadline), _dumps([turn.id, turn.digest, turn.response]), KEEP_TURNS]))
        except _ERRORS as exc:
            failure = self._failed(exc)
            if await self._landed(chat_id, turn.id, deadline):
                return Saved.SAVED
            raise failure from None
        self._ok()
        return _SAVE_CODES[code]

    async def _landed(self, chat_id: str, turn_id: str, deadline: float) -> bool:
        """Whether a save whose answer was lost did store ``turn_id``. Asks until Redis's clock is past the
        save's deadline (then the answer is final), for at most one lease period; ``False`` if Redis stays
        away that long (the one case where the caller's 503 may still be followed by a stored turn)."""
        give_up = time.monotonic() + self._lease
        while time.monotonic() < give_up:
            try:
                stored, past = await self._settled(keys=[self._p + chat_id], args=[turn_id, repr(deadline)])
            except _ERRORS:
                await asyncio.sleep(self._poll * 4)
                continue
            self._ok()
            if stored:
                return True
            if past:
                return False
            await asyncio.sleep(self._poll)
        log.warning("session store: could not learn whether an interrupted save landed")
        return False

    async def delete(self, chat_id: str, now: float) -> bool:
        try:
            removed = await self._delete(keys=[self._p + chat_id], args=[repr(now), self._p, chat_id])
        except _ERRORS as exc:
            raise self._failed(exc) from None
        self._ok()
        return bool(removed)

    async def acquire(self, chat_id: str, wait: float | None = None) -> Lease:
        wait = self.wait if wait is None else wait
        give_up = time.monotonic() + wait
        if not await self._locks.acquire(chat_id, wait):
            raise ChatBusy(chat_id)
        try:
            key, lease = f"{self._p}lock:{chat_id}", Lease(chat_id, secrets.token_hex(12))
            while True:
                sent = time.monotonic()
                try:
                    taken, redis_ms = await self._acquire(keys=[key], args=[lease.token, self._lease_ms])
                except _ERRORS as exc:
                    raise self._failed(exc) from None
                self._ok()
                if taken:
                    break
                if time.monotonic() + self._poll > give_up:
                    raise ChatBusy(chat_id)
                await asyncio.sleep(self._poll)
        except BaseException:
            self._locks.release(chat_id)
            raise
        lease.valid_until = sent + self._lease
        lease.clock_offset_ms = float(redis_ms) - time.time() * 1000.0
        lease.renewer = asyncio.create_task(self._keep(lease, key), name="session-lease")
        return lease

    async def _keep(self, lease: Lease, key: str) -> None:
        """Renew every third of the lease until released; a refusal or a whole lease without a successful
        renewal marks it lost, and the turn's save is then refused."""
        while not lease.lost:
            await asyncio.sleep(self._lease / 3.0)
            if lease.lost:  # released meanwhile
                return
            sent = time.monotonic()
            try:
                renewed = await self._renew(keys=[key], args=[lease.token, self._lease_ms])
            except _ERRORS as exc:
                self._failed(exc)
                continue
            self._ok()
            if renewed:
                lease.valid_until = sent + self._lease
            elif lease.renewer is not None:  # (after a release, the refusal is expected)
                lease.refused = True
                log.warning("session store: a turn lost its chat's lease; its history will not be saved")
            else:
                return

    async def release(self, lease: Lease) -> None:
        renewer, lease.renewer = lease.renewer, None
        if renewer is None:
            return  # released already
        # Marked first: the renewer stops at its next step even if a Redis call swallows the cancellation
        # (seen with redis-py during a stall). It is not awaited, so a stalled renewal never delays the reply;
        # the store keeps it referenced until it ends.
        lease.refused = True
        renewer.cancel()
        if not renewer.done():
            self._renewers.add(renewer)
            renewer.add_done_callback(self._renewers.discard)
        try:  # compare-and-delete: harmless when the lease lapsed or passed to another turn
            await self._release(keys=[f"{self._p}lock:{lease.chat_id}"], args=[lease.token])
        except _ERRORS as exc:  # the lease lapses by itself within seconds
            self._failed(exc)
        finally:
            self._locks.release(lease.chat_id)

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
        for renewer in list(self._renewers):
            renewer.cancel()
        try:
            await self._redis.aclose()
        except _ERRORS:
            pass
