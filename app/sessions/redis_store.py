"""``RedisSessionStore``: sessions shared by every replica, each operation one Lua script (``begin`` also reads
the history list, in the same pipeline).

Layout under ``prefix`` (default ``gg:sess:``)::

    <chat_id>        hash    user, model, config (JSON), created, exp (epoch seconds), ver (saved turns),
                             turns (JSON: the last few turn ids with their answers)
    h:<chat_id>      list    the history, one JSON text per turn (Gemini ``contents`` entries)
    u:<user_id>      zset    the user's chat_ids scored by expiry: the per-user cap, least recently used first
    all              zset    every chat_id scored by expiry: the total cap
    lock:<chat_id>   string  lease held by the replica running the chat's current turn

Times travel as strings (``repr`` of the float) and are handed to Redis commands unchanged: Lua's number to
string conversion keeps only 14 digits. ``exp`` in the hash is the truth for expiry (so tests can drive it
with a fake clock, like the memory store); ``PEXPIRE`` only lets Redis reclaim what nobody touches again. The
zsets are pruned by score before every cap decision, so entries of sessions that Redis expired on its own do
not count. chat_ids are URL-safe tokens without ``:``, so they cannot collide with the
``u:``/``all``/``lock:``/``h:`` names.

Why a list for the history: a turn must send the whole history upstream, but need not parse it nor write it
all back. ``begin`` hands the stored turns out as ``orjson.Fragment``s (encoded JSON spliced unparsed into the
upstream request), and the save sends only the new exchange with how many stored turns to keep (``LTRIM``,
``RPUSH``), since the version check guarantees the list is the one the turn read. At 100 turns that took
~110 µs of gateway CPU and ~15 µs of Redis's off every turn (docs/benchmarks.md). The list is read by a plain
``LRANGE`` sent in the same pipeline right after ``begin`` (inside the script it cost Redis ~36 µs more): the
turn holds the chat's lease by then, so no save can change it in between; an ``end_chat`` that lands in
between leaves the turn an empty history and its save finds the chat gone, as it would anyway. A chat stored
by an older gateway (its history a JSON ``history`` field of the hash) is read from that field and moved into
the list by its next save.

Unlike the key pool, sessions have no local fallback when Redis is down: a replica-local copy would fork a
conversation, and a chat started during the outage would vanish afterwards. Failures raise
:class:`StoreUnavailable` (the API answers 503 with Retry-After) and are reported to the process's
``RedisLink``; while the link is not healthy every call raises it at once, without waiting on Redis.

A send_message costs two round trips: ``begin`` (load, the user's rate limit, the lease, in one script; the
chat's key binding rides in its hash) and the save, which also releases the lease and records the binding.
Those scripts go through a ``ScriptBatcher`` (``app/state/redis_batch.py``): the ones that concurrent turns
issue in the same loop turn share one pipeline, which is what makes a turn cheap in client CPU under load.

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
from collections.abc import Awaitable
from typing import Any

import orjson
import redis.asyncio as aioredis

from app.state.redis_batch import ScriptBatcher
from app.state.redis_link import ERRORS as _ERRORS
from app.state.redis_link import RedisLink, redact_url

from .lease import ChatBusy, Lease, Saved
from .model import Session, TurnRecord
from .ratelimit import RateLimiter, RedisRateLimiter
from .store import Begun, KeyedLock, Limits, SessionLimitReached, StoreUnavailable, begin_in_steps
from .turns import KEEP_TURNS

__all__ = ["RedisSessionStore", "redact_url"]

log = logging.getLogger("gateway.sessions")

# Shared Lua: forget a session everywhere. Expects `prefix`, `cid`, `user` locals.
_FORGET = """
local function forget(prefix, key, cid, user)
  redis.call('DEL', key, prefix .. 'h:' .. cid)
  if user then redis.call('ZREM', prefix .. 'u:' .. user, cid) end
  redis.call('ZREM', prefix .. 'all', cid)
end
local function keep(prefix, key, cid, user, exp, ttl_ms)
  redis.call('HSET', key, 'exp', exp)
  redis.call('PEXPIRE', key, ttl_ms)
  redis.call('PEXPIRE', prefix .. 'h:' .. cid, ttl_ms)
  redis.call('ZADD', prefix .. 'u:' .. user, exp, cid)
  redis.call('PEXPIRE', prefix .. 'u:' .. user, ttl_ms)
  redis.call('ZADD', prefix .. 'all', exp, cid)
end
"""

# Append ARGV[from..] to a list (in slices: unpack has a stack limit).
_PUSH = """
local function push(list, from)
  for i = from, #ARGV, 1000 do
    redis.call('RPUSH', list, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
"""

# KEYS: session, user zset, all zset
# ARGV: now, exp, ttl_ms, max_per_user, max_total, prefix, chat_id, user, model, config, created, history
#       turns (JSON texts)...
# Returns {1|0 (created | total cap reached), {evicted chat_ids...}}
_CREATE = _FORGET + _PUSH + """
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
redis.call('HSET', KEYS[1], 'user', ARGV[8], 'model', ARGV[9], 'config', ARGV[10], 'created', ARGV[11])
push(ARGV[6] .. 'h:' .. ARGV[7], 12)
keep(ARGV[6], KEYS[1], ARGV[7], ARGV[8], ARGV[2], ARGV[3])
return {1, evicted}
"""

# KEYS: session, history list. ARGV: now, exp, ttl_ms, prefix, chat_id.
# Returns {the hash as a flat list, the history's turns}, or nil.
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
return {h, redis.call('LRANGE', KEYS[2], 0, -1)}
"""

_NOW_MS = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: session, lock, history list.
# ARGV: now, exp, ttl_ms, prefix, chat_id, token, expect, deadline_ms, turn ([id, digest, answer]), keep,
#       key_id ('' = unchanged), release ('1': free the lease too), stored turns to keep (-1: replace the
#       whole history, and drop an older gateway's ``history`` field), then the turns to append (JSON
#       texts)...
# Returns 1 saved, 0 gone, -1 too late, -2 lease lost, -3 stale version.
_SAVE = _FORGET + _NOW_MS + _PUSH + """
local function save()
  if now_ms() > tonumber(ARGV[8]) then return -1 end
  if redis.call('GET', KEYS[2]) ~= ARGV[6] then return -2 end
  local f = redis.call('HMGET', KEYS[1], 'user', 'exp', 'ver')
  if not f[1] or not f[2] then return 0 end
  if tonumber(f[2]) <= tonumber(ARGV[1]) then
    forget(ARGV[4], KEYS[1], ARGV[5], f[1])
    return 0
  end
  if (tonumber(f[3]) or 0) ~= tonumber(ARGV[7]) then return -3 end
  local stored = tonumber(ARGV[13])
  local drop = 0
  if stored >= 0 then
    drop = redis.call('LLEN', KEYS[3]) - stored
    if drop < 0 then return -3 end
  end
  local turns = cjson.decode(redis.call('HGET', KEYS[1], 'turns') or '[]')
  turns[#turns + 1] = cjson.decode(ARGV[9])
  local kept = {}
  for i = math.max(1, #turns - tonumber(ARGV[10]) + 1), #turns do kept[#kept + 1] = turns[i] end
  if stored < 0 then
    redis.call('DEL', KEYS[3])
    redis.call('HDEL', KEYS[1], 'history')
  elseif drop > 0 then
    redis.call('LTRIM', KEYS[3], drop, -1)
  end
  push(KEYS[3], 14)
  redis.call('HSET', KEYS[1], 'ver', tonumber(ARGV[7]) + 1, 'turns', cjson.encode(kept))
  if ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'key', ARGV[11]) end
  keep(ARGV[4], KEYS[1], ARGV[5], f[1], ARGV[2], ARGV[3])
  return 1
end
local code = save()
if ARGV[12] == '1' and redis.call('GET', KEYS[2]) == ARGV[6] then redis.call('DEL', KEYS[2]) end
return code
"""

# The start of a send_message, one step. KEYS: session, lock.
# ARGV: now, exp, ttl_ms, prefix, chat_id, go ('1'/'0'), claimed user (''), turn_id (''),
#       rate-limit key prefix ('' = none), then the rate limit's now, horizon, limit, member, window_ms,
#       then the lease token, lease_ms.
# Returns {0} unknown chat; {1, hash} loaded only (not go, or a stored turn); {2, hash, oldest call} the
# user's rate limit refused; {3, hash, Redis ms} leased; {4, hash} the lease is held by another turn.
_BEGIN = _FORGET + _NOW_MS + """
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {0} end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
if not f['user'] or not f['exp'] then redis.call('DEL', KEYS[1]) return {0} end
if tonumber(f['exp']) <= tonumber(ARGV[1]) then
  forget(ARGV[4], KEYS[1], ARGV[5], f['user'])
  return {0}
end
if ARGV[7] ~= '' and ARGV[7] ~= f['user'] then return {0} end
keep(ARGV[4], KEYS[1], ARGV[5], f['user'], ARGV[2], ARGV[3])
if ARGV[6] ~= '1' then return {1, h} end
if ARGV[8] ~= '' and f['turns'] then
  for _, t in ipairs(cjson.decode(f['turns'])) do
    if t[1] == ARGV[8] then return {1, h} end
  end
end
if ARGV[9] ~= '' then
  local rl = ARGV[9] .. 'user:' .. f['user']
  redis.call('ZREMRANGEBYSCORE', rl, '-inf', ARGV[11])
  if redis.call('ZCARD', rl) >= tonumber(ARGV[12]) then
    local oldest = redis.call('ZRANGE', rl, 0, 0, 'WITHSCORES')
    return {2, h, oldest[2]}
  end
  redis.call('ZADD', rl, ARGV[10], ARGV[13])
  redis.call('PEXPIRE', rl, ARGV[14])
end
if redis.call('SET', KEYS[2], ARGV[15], 'NX', 'PX', ARGV[16]) then return {3, h, tostring(now_ms())} end
return {4, h}
"""

# Waiting for a busy chat: take the lease and read the session under it. KEYS: session, lock.
# ARGV: now, exp, ttl_ms, prefix, chat_id, token, lease_ms. Returns {0} busy, {1, hash or false, Redis ms}.
_TAKE = _FORGET + _NOW_MS + """
if not redis.call('SET', KEYS[2], ARGV[6], 'NX', 'PX', ARGV[7]) then return {0} end
local h = redis.call('HGETALL', KEYS[1])
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
if #h == 0 or not f['user'] or not f['exp'] or tonumber(f['exp']) <= tonumber(ARGV[1]) then
  return {1, false, tostring(now_ms())}
end
keep(ARGV[4], KEYS[1], ARGV[5], f['user'], ARGV[2], ARGV[3])
return {1, h, tostring(now_ms())}
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


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class RedisSessionStore:
    def __init__(self, url: str, limits: Limits, *, prefix: str = "gg:sess:", lease: float = 5.0,
                 wait: float = 5.0, timeout: float = 2.0, client: aioredis.Redis | None = None,
                 poll: float = 0.05, link: RedisLink | None = None, retry_interval: float = 1.0) -> None:
        self.limits = limits
        self.wait = wait
        self._own_link = link is None
        self._link = link if link is not None else RedisLink(url, retry_interval=retry_interval)
        self._link.register("sessions")
        self._redis: aioredis.Redis = client or self._link.client(timeout=timeout)
        self._p = prefix
        self._lease = lease
        self._lease_ms = max(1, int(lease * 1000))
        # A save must run in Redis within half the socket timeout of being sent, so its answer (if any) is
        # back before the caller gives up on it: what runs later is refused.
        self._save_budget_ms = timeout * 500.0
        self._poll = poll
        self._locks = KeyedLock()
        self._renewers: set[asyncio.Task[None]] = set()
        self.round_trips = 0
        # The scripts of a send_message (begin, take, save) issued in one loop turn share one pipeline.
        self._batch = ScriptBatcher(self._redis)
        self._begin = self._batch.script(_BEGIN)
        self._take = self._batch.script(_TAKE)
        self._save = self._batch.script(_SAVE)
        self._create = self._redis.register_script(_CREATE)
        self._load = self._redis.register_script(_LOAD)
        self._settled = self._redis.register_script(_SETTLED)
        self._delete = self._redis.register_script(_DELETE)
        self._sweep = self._redis.register_script(_SWEEP)
        self._count = self._redis.register_script(_COUNT)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    # -- plumbing --------------------------------------------------------------------------------------------

    @property
    def redis_errors(self) -> int:
        return self._link.errors.get("sessions", 0)

    def _exp(self, now: float) -> tuple[str, int]:
        return repr(now + self.limits.ttl), max(1, int(self.limits.ttl * 1000))

    def _failed(self, exc: BaseException, op: str = "call") -> StoreUnavailable:
        self._link.failed("sessions", exc, op)
        return StoreUnavailable(f"the session store is unavailable ({type(exc).__name__})")

    def _guard(self) -> None:
        """While the link is not healthy, answer at once: no call waits on a Redis that is away."""
        if not self._link.usable():
            raise StoreUnavailable("the session store is unavailable (Redis is down)")
        self.round_trips += 1

    def _session(self, chat_id: str, flat: list[str], turns: list[str], *,
                 fragments: bool = False) -> Session:
        """The session of a hash and its history list; ``fragments``: the history's turns as
        ``orjson.Fragment``s (a turn's request is built from them without parsing; module doc)."""
        f = dict(zip(flat[::2], flat[1::2], strict=True))
        legacy = f.get("history")  # a chat stored by an older gateway: the whole history in one field
        if legacy is not None:
            history: list[Any] = orjson.loads(legacy)
        elif fragments:
            history = [orjson.Fragment(t) for t in turns]
        else:
            history = [orjson.loads(t) for t in turns]
        return Session(chat_id=chat_id, user_id=f["user"], model=f.get("model", ""),
                       generation_config=orjson.loads(f.get("config") or "{}"), history=history,
                       created=float(f.get("created") or 0.0), version=int(f.get("ver") or 0),
                       turns=[TurnRecord(*t) for t in orjson.loads(f.get("turns") or "[]")],
                       key_id=f.get("key") or "")

    async def _and_history(self, call: Awaitable[Any], chat_id: str) -> tuple[Any, list[str]]:
        """A batched script's reply and the chat's history list, read by an ``LRANGE`` queued right after the
        script, so it travels in the same pipeline and runs after it."""
        turns = self._batch.command("LRANGE", f"{self._p}h:{chat_id}", 0, -1)
        try:
            reply = await call
        except BaseException:
            if not turns.done():
                turns.cancel()
            elif not turns.cancelled():
                turns.exception()  # the batch's failure, raised once through ``call``
            raise
        return reply, await turns

    @staticmethod
    def _changes(history: list[Any], stored: list[Any] | None) -> tuple[int, list[Any]]:
        """``(kept, new)``: the new history is the last ``kept`` turns of the stored list (the very fragments
        handed out) followed by ``new``; ``(-1, history)`` when it is not so (then the save replaces it)."""
        if stored is None:
            return -1, history
        kept = len(history)
        while kept and type(history[kept - 1]) is not orjson.Fragment:  # the new turns come last
            kept -= 1
        # A list compares its items by identity first (in C); Fragments have no other equality.
        if kept > len(stored) or history[:kept] != stored[len(stored) - kept:]:
            return -1, history
        return kept, history[kept:]

    # -- SessionStore ----------------------------------------------------------------------------------------

    async def create(self, session: Session, now: float) -> list[str]:
        exp, ttl_ms = self._exp(now)
        p = self._p
        self._guard()
        try:
            created, evicted = await self._create(
                keys=[p + session.chat_id, f"{p}u:{session.user_id}", p + "all"],
                args=[repr(now), exp, ttl_ms, self.limits.max_per_user, self.limits.max_total, p,
                      session.chat_id, session.user_id, session.model, _dumps(session.generation_config),
                      repr(session.created), *map(orjson.dumps, session.history)])
        except _ERRORS as exc:
            raise self._failed(exc, "create") from None
        if not created:
            raise SessionLimitReached(f"the gateway holds its maximum of {self.limits.max_total} sessions")
        return list(evicted)

    async def load(self, chat_id: str, now: float) -> Session | None:
        exp, ttl_ms = self._exp(now)
        self._guard()
        try:
            found = await self._load(keys=[self._p + chat_id, f"{self._p}h:{chat_id}"],
                                     args=[repr(now), exp, ttl_ms, self._p, chat_id])
        except _ERRORS as exc:
            raise self._failed(exc, "load") from None
        return self._session(chat_id, found[0], found[1]) if found else None

    async def begin(self, chat_id: str, now: float, *, claimed: str | None, turn_id: str | None, go: bool,
                    limiter: RateLimiter) -> Begun:
        if not isinstance(limiter, RedisRateLimiter):  # a limiter elsewhere: the same steps, one at a time
            return await begin_in_steps(self, chat_id, now, claimed=claimed, turn_id=turn_id, go=go,
                                        limiter=limiter)
        if go and not await self._locks.acquire(chat_id, self.wait):
            raise ChatBusy(chat_id)
        give_up = time.monotonic() + self.wait
        handed = False
        try:
            keys = [self._p + chat_id, f"{self._p}lock:{chat_id}"]
            exp, ttl_ms = self._exp(now)
            token = secrets.token_hex(12)
            sent = time.monotonic()
            self._guard()
            try:
                res, turns = await self._and_history(self._begin(keys=keys, args=[
                    repr(now), exp, ttl_ms, self._p, chat_id, "1" if go else "0", claimed or "",
                    turn_id or "", limiter.prefix, *limiter.acquire_args(now), token, self._lease_ms]),
                    chat_id)
            except _ERRORS as exc:
                raise self._failed(exc, "begin") from None
            code = int(res[0])
            if code == 0:
                return Begun(None)
            flat = res[1]
            session: Session | None = self._session(chat_id, flat, turns, fragments=True)
            if code == 1:
                return Begun(session)
            if code == 2:
                return Begun(session, wait=limiter.refused_wait(res[2], now))
            redis_ms = res[2] if code == 3 else None
            while redis_ms is None:  # another turn holds the chat: wait for it, bounded
                if time.monotonic() + self._poll > give_up:
                    raise ChatBusy(chat_id)
                await asyncio.sleep(self._poll)
                sent = time.monotonic()
                self._guard()
                try:
                    taken, turns = await self._and_history(self._take(keys=keys, args=[
                        repr(now), exp, ttl_ms, self._p, chat_id, token, self._lease_ms]), chat_id)
                except _ERRORS as exc:
                    raise self._failed(exc, "take") from None
                if int(taken[0]):
                    flat = taken[1] or []
                    session = self._session(chat_id, flat, turns, fragments=True) if flat else None
                    redis_ms = taken[2]
            lease = self._leased(chat_id, token, keys[1], sent, float(redis_ms))
            if session is not None and "history" not in flat[::2]:  # (an older gateway's chat: replaced)
                lease.stored = list(session.history)
            handed = True
            return Begun(session, lease)
        finally:
            if go and not handed:
                self._locks.release(chat_id)

    async def save_history(self, chat_id: str, history: list[dict[str, Any]], now: float, *, lease: Lease,
                           expect: int, turn: TurnRecord, key_id: str = "", release: bool = False) -> Saved:
        if lease.lost:
            if release:
                await self.release(lease)
            return Saved.LOST
        exp, ttl_ms = self._exp(now)
        deadline = time.time() * 1000.0 + lease.clock_offset_ms + self._save_budget_ms
        try:
            self._guard()
            kept, new = self._changes(history, lease.stored)
            code = int(await self._save(
                keys=[self._p + chat_id, f"{self._p}lock:{chat_id}", f"{self._p}h:{chat_id}"],
                args=[repr(now), exp, ttl_ms, self._p, chat_id, lease.token, expect, repr(deadline),
                      _dumps([turn.id, turn.digest, turn.response]), KEEP_TURNS, key_id,
                      "1" if release else "0", kept, *map(orjson.dumps, new)]))
        except StoreUnavailable:
            if release:
                await self.release(lease)
            raise
        except _ERRORS as exc:
            failure = self._failed(exc, "save")
            landed = await self._landed(chat_id, turn.id, deadline)
            if release:
                await self.release(lease)
            if landed:
                return Saved.SAVED
            raise failure from None
        if release:
            self._released(lease)  # the script freed it
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
            if stored:
                return True
            if past:
                return False
            await asyncio.sleep(self._poll)
        log.warning("session store: could not learn whether an interrupted save landed")
        return False

    async def delete(self, chat_id: str, now: float) -> bool:
        self._guard()
        try:
            removed = await self._delete(keys=[self._p + chat_id], args=[repr(now), self._p, chat_id])
        except _ERRORS as exc:
            raise self._failed(exc, "delete") from None
        return bool(removed)

    async def acquire(self, chat_id: str, wait: float | None = None) -> Lease:
        wait = self.wait if wait is None else wait
        give_up = time.monotonic() + wait
        if not await self._locks.acquire(chat_id, wait):
            raise ChatBusy(chat_id)
        try:
            key, token = f"{self._p}lock:{chat_id}", secrets.token_hex(12)
            while True:
                sent = time.monotonic()
                self._guard()
                try:
                    taken, redis_ms = await self._acquire(keys=[key], args=[token, self._lease_ms])
                except _ERRORS as exc:
                    raise self._failed(exc, "acquire") from None
                if taken:
                    break
                if time.monotonic() + self._poll > give_up:
                    raise ChatBusy(chat_id)
                await asyncio.sleep(self._poll)
        except BaseException:
            self._locks.release(chat_id)
            raise
        return self._leased(chat_id, token, key, sent, float(redis_ms))

    def _leased(self, chat_id: str, token: str, key: str, sent: float, redis_ms: float) -> Lease:
        """A lease just taken in Redis (the local lock already held): its validity, clock offset, renewer."""
        lease = Lease(chat_id, token)
        lease.valid_until = sent + self._lease
        lease.clock_offset_ms = redis_ms - time.time() * 1000.0
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
            if not self._link.usable():
                continue  # no renewal while Redis is away: the lease lapses and the save is refused
            try:
                renewed = await self._renew(keys=[key], args=[lease.token, self._lease_ms])
            except _ERRORS as exc:
                self._failed(exc, "renew")
                continue
            if renewed:
                lease.valid_until = sent + self._lease
            elif lease.renewer is not None:  # (after a release, the refusal is expected)
                lease.refused = True
                log.warning("session store: a turn lost its chat's lease; its history will not be saved")
            else:
                return

    def _released(self, lease: Lease) -> bool:
        """The local half of a release: stop the renewer, free the process lock. False if done already."""
        renewer, lease.renewer = lease.renewer, None
        if renewer is None:
            return False
        # Marked first: the renewer stops at its next step even if a Redis call swallows the cancellation
        # (seen with redis-py during a stall). It is not awaited, so a stalled renewal never delays the reply;
        # the store keeps it referenced until it ends.
        lease.refused = True
        renewer.cancel()
        if not renewer.done():
            self._renewers.add(renewer)
            renewer.add_done_callback(self._renewers.discard)
        self._locks.release(lease.chat_id)
        return True

    async def release(self, lease: Lease) -> None:
        if not self._released(lease) or not self._link.usable():
            return  # released already, or Redis is away: the lease lapses by itself within seconds
        try:  # compare-and-delete: harmless when the lease lapsed or passed to another turn
            self.round_trips += 1
            await self._release(keys=[f"{self._p}lock:{lease.chat_id}"], args=[lease.token])
        except _ERRORS as exc:
            self._failed(exc, "release")

    async def count(self, now: float) -> int:
        self._guard()
        try:
            return int(await self._count(keys=[self._p + "all"], args=[repr(now)]))
        except _ERRORS as exc:
            raise self._failed(exc, "count") from None

    async def sweep(self, now: float) -> int:
        self._guard()
        try:
            return int(await self._sweep(keys=[self._p + "all"], args=[repr(now), self._p, 500]))
        except _ERRORS as exc:
            raise self._failed(exc, "sweep") from None

    async def close(self) -> None:
        for renewer in list(self._renewers):
            renewer.cancel()
        await self._batch.close()
        if self._own_link:
            await self._link.close()
