"""``RedisPoolStore``: the pool state shared by every replica, with a local fallback.

Every state change is one Lua script (or one MULTI), so a decision such as "advance the cursor past cooling
keys and take the next one" happens inside Redis, atomically, never as read-here-then-write-there. Times
are the caller's epoch seconds (``now``/``until``), passed as arguments, so tests can drive a fake clock.

Layout under ``prefix`` (default ``gg:``)::

    cur:<model>    string  round-robin cursor for the model (index of the next key to try)
    cool:<model>   hash    key_id -> until (epoch seconds); expired fields are pruned by ``pick``
    coolr:<model>  hash    key_id -> cooldown reason
    models         set     models that have (had) cooldowns, for snapshots
    dis / dis_at   hashes  key_id -> disable reason / time
    fail           hash    key_id -> consecutive transient failures
    sfail          hash    key_id -> consecutive mid-stream failures
    cnt            hash    "<key_id>|<kind>" -> count
    err / err_at   hashes  key_id -> last error / time

Every key a script touches is passed in ``KEYS``; on Redis Cluster use a hash-tagged prefix such as
``{gg}:`` so that they share one slot.

Fallback policy when Redis fails (connection refused, timeout, any Redis error):

* the call is served by an embedded ``MemoryPoolStore`` instead, and never raises;
* the first failure of an outage is logged once (no URL password, no key), every failure adds one to
  ``redis_errors``;
* for ``retry_interval`` seconds all calls go straight to local state, so an outage costs no timeouts on the
  request path; then a single call probes Redis again, and the first success switches back (logged once);
* writes are mirrored into the local store at all times, so the fallback starts warm with what this replica
  has seen (disabled keys, cooldowns). State learned during an outage is not copied back: Redis resumes with
  its own older state, and anything missed is relearned from the next upstream answers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .classify import OutcomeKind
from .store import KIND_ORDER, Cooldown, KeyStatus, MemoryPoolStore, Pick, counters_dict

__all__ = ["RedisPoolStore"]

log = logging.getLogger(__name__)

_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

# KEYS: cursor, disabled hash, cooldown hash, cooldown-reason hash
# ARGV: now, n_excluded, excluded..., key_ids...
# Returns {key_id|nil, wait|nil, all_disabled 0/1}; wait is a string because Lua numbers become integers.
_PICK = """
local now = tonumber(ARGV[1])
local first = 3 + tonumber(ARGV[2])
local n = #ARGV - first + 1
if n <= 0 then return {false, false, 0} end
local ex = {}
for i = 3, first - 1 do ex[ARGV[i]] = true end
local dis = {}
local d = redis.call('HKEYS', KEYS[2])
for i = 1, #d do dis[d[i]] = true end
local cool = {}
local c = redis.call('HGETALL', KEYS[3])
for i = 1, #c, 2 do cool[c[i]] = tonumber(c[i + 1]) end
local start = (tonumber(redis.call('GET', KEYS[1])) or 0) % n
local earliest = false
for j = 0, n - 1 do
  local idx = (start + j) % n
  local kid = ARGV[first + idx]
  if not dis[kid] and not ex[kid] then
    local untl = cool[kid]
    if untl and untl > now then
      if not earliest or untl < earliest then earliest = untl end
    else
      if untl then
        redis.call('HDEL', KEYS[3], kid)
        redis.call('HDEL', KEYS[4], kid)
      end
      redis.call('SET', KEYS[1], idx + 1)
      return {kid, false, 0}
    end
  end
end
local all = 1
for i = first, #ARGV do
  if not dis[ARGV[i]] then all = 0 break end
end
if earliest then return {false, tostring(earliest - now), all} end
return {false, false, all}
"""

# KEYS: cooldown hash, cooldown-reason hash, models set
# ARGV: until, reason, model, key_ids...
_COOL = """
local untl = tonumber(ARGV[1])
for i = 4, #ARGV do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  if not cur or untl > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[2])
  end
end
redis.call('SADD', KEYS[3], ARGV[3])
return 0
"""

# KEYS: disabled hash, disabled-at hash. ARGV: key_id, reason, at. The first reason wins.
_DISABLE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
return 0
"""

# KEYS: fail hash, counters hash, error hash, error-at hash, stream-fail hash
# ARGV: key_id, counter field, error ('' = none), at, streak ('0' none, '1' consecutive, '2' mid-stream),
#       '1' to count the outcome in the counters
# Returns the streak's new length (0 when extending none).
_COUNT = """
if ARGV[6] == '1' then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
end
if ARGV[5] == '1' then return redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
if ARGV[5] == '2' then return redis.call('HINCRBY', KEYS[5], ARGV[1], 1) end
return 0
"""

# KEYS: fail hash, counters hash, stream-fail hash. ARGV: key_id, counter field, '1' for a finished stream.
_SUCCESS = """
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[3] == '1' then redis.call('HDEL', KEYS[3], ARGV[1]) end
return 0
"""

_URL_SECRET_RE = re.compile(r"//[^@/]*@")


def _redact_url(url: str) -> str:
    return _URL_SECRET_RE.sub("//***@", url)


class RedisPoolStore:
    """``PoolStore`` over Redis, shared by replicas; degrades to local memory instead of raising."""

    def __init__(
        self,
        url: str,
        prefix: str = "gg:",
        *,
        client: aioredis.Redis | None = None,
        timeout: float = 0.5,
        retry_interval: float = 5.0,
    ) -> None:
        # One immediate retry reconnects a pooled connection that Redis closed (restart); more would only
        # stretch an outage into request latency.
        self._redis: aioredis.Redis = client or aioredis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self._where = _redact_url(url)
        self._p = prefix
        self._retry_interval = retry_interval
        self._local = MemoryPoolStore()
        self._degraded = False
        self._probe_at = 0.0  # monotonic time of the next Redis attempt while degraded
        self.redis_errors = 0
        self._model_keys: dict[str, tuple[str, str, str]] = {}
        self._picks: dict[str, Pick] = {}
        self._dis, self._dis_at = prefix + "dis", prefix + "dis_at"
        self._fail, self._cnt = prefix + "fail", prefix + "cnt"
        self._sfail = prefix + "sfail"
        self._err, self._err_at = prefix + "err", prefix + "err_at"
        self._models = prefix + "models"
        self._pick_script = self._redis.register_script(_PICK)
        self._cool_script = self._redis.register_script(_COOL)
        self._disable_script = self._redis.register_script(_DISABLE)
        self._count_script = self._redis.register_script(_COUNT)
        self._success_script = self._redis.register_script(_SUCCESS)

    # -- health ---------------------------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while calls are served from local memory because Redis failed."""
        return self._degraded

    def _use_redis(self) -> bool:
        if not self._degraded:
            return True
        now = time.monotonic()
        if now < self._probe_at:
            return False
        self._probe_at = now + self._retry_interval  # one probe per interval, not one per concurrent call
        return True

    def _failed(self, exc: BaseException, op: str) -> None:
        self.redis_errors += 1
        self._probe_at = time.monotonic() + self._retry_interval
        if not self._degraded:
            self._degraded = True
            detail = _redact_url(str(exc))[:200]
            log.warning(
                "redis state store at %s failed during %s (%s: %s); serving key state from local memory, "
                "retrying every %.0fs",
                self._where, op, type(exc).__name__, detail, self._retry_interval,
            )

    def _ok(self) -> None:
        if self._degraded:
            self._degraded = False
            log.warning("redis state store at %s is reachable again; shared key state resumed", self._where)

    def _keys_for(self, model: str) -> tuple[str, str, str]:
        """Cursor, cooldown and cooldown-reason key names for ``model`` (cached: built once per model)."""
        keys = self._model_keys.get(model)
        if keys is None:
            p = self._p
            keys = self._model_keys[model] = (p + "cur:" + model, p + "cool:" + model, p + "coolr:" + model)
        return keys

    async def ping(self) -> bool:
        """Whether Redis answers now (for /health); never raises."""
        try:
            await self._redis.ping()
        except _ERRORS:
            return False
        return True

    # -- hot path -------------------------------------------------------------------------------------------

    async def pick(self, key_ids: Sequence[str], model: str, exclude: Collection[str], now: float) -> Pick:
        if self._use_redis():
            cur, cool, coolr = self._keys_for(model)
            try:
                res = await self._pick_script(
                    keys=(cur, self._dis, cool, coolr),
                    args=(repr(now), len(exclude), *exclude, *key_ids),
                )
            except _ERRORS as exc:
                self._failed(exc, "pick")
            else:
                self._ok()
                kid, wait, all_disabled = res
                if kid is not None:
                    picked = self._picks.get(kid)
                    if picked is None:
                        picked = self._picks[kid] = Pick(kid)
                    return picked
                return Pick(None, None if wait is None else float(wait), bool(all_disabled))
        return self._local.pick_now(key_ids, model, exclude, now)

    async def success(self, key_id: str, stream: bool = False) -> None:
        await self._local.success(key_id, stream)
        if self._use_redis():
            try:
                await self._success_script(keys=(self._fail, self._cnt, self._sfail),
                                           args=(key_id, key_id + "|ok", "1" if stream else "0"))
            except _ERRORS as exc:
                self._failed(exc, "success")
            else:
                self._ok()

    # -- outcomes -------------------------------------------------------------------------------------------

    async def _count(self, key_id: str, kind: OutcomeKind, error: str | None, now: float | None,
                     streak: str, tally: bool = True) -> int | None:
        if not self._use_redis():
            return None
        at = time.time() if now is None else now
        try:
            count = await self._count_script(
                keys=(self._fail, self._cnt, self._err, self._err_at, self._sfail),
                args=(key_id, f"{key_id}|{kind.value}", error or "", repr(at), streak, "1" if tally else "0"),
            )
        except _ERRORS as exc:
            self._failed(exc, "count")
            return None
        self._ok()
        return int(count)

    async def failure(self, key_id: str, error: str | None = None, now: float | None = None, *,
                      stream: bool = False, tally: bool = True) -> int:
        local = await self._local.failure(key_id, error, now, stream=stream, tally=tally)
        shared = await self._count(key_id, OutcomeKind.TRANSIENT, error, now, "2" if stream else "1", tally)
        return local if shared is None else shared

    async def record(self, key_id: str, kind: OutcomeKind, error: str | None = None,
                     now: float | None = None) -> None:
        await self._local.record(key_id, kind, error, now)
        await self._count(key_id, kind, error, now, "0")

    async def cool(self, key_id: str, model: str, until: float, reason: str) -> None:
        await self.cool_many((key_id,), model, until, reason)

    async def cool_many(self, key_ids: Sequence[str], model: str, until: float, reason: str) -> None:
        self._local.cool_now(key_ids, model, until, reason)
        if self._use_redis():
            _, cool, coolr = self._keys_for(model)
            try:
                await self._cool_script(keys=(cool, coolr, self._models),
                                        args=(repr(until), reason, model, *key_ids))
            except _ERRORS as exc:
                self._failed(exc, "cool")
            else:
                self._ok()

    async def disable(self, key_id: str, reason: str, now: float | None = None) -> None:
        at = time.time() if now is None else now
        await self._local.disable(key_id, reason, at)
        if self._use_redis():
            try:
                await self._disable_script(keys=(self._dis, self._dis_at), args=(key_id, reason, repr(at)))
            except _ERRORS as exc:
                self._failed(exc, "disable")
            else:
                self._ok()

    async def enable(self, key_id: str) -> None:
        await self._local.enable(key_id)
        if self._use_redis():
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.hdel(self._dis, key_id).hdel(self._dis_at, key_id).hdel(self._fail, key_id)
                    pipe.hdel(self._sfail, key_id)
                    await pipe.execute()
            except _ERRORS as exc:
                self._failed(exc, "enable")
            else:
                self._ok()

    # -- reads ----------------------------------------------------------------------------------------------

    async def wait(self, key_ids: Sequence[str], model: str, now: float) -> float | None:
        if self._use_redis():
            _, cool, _ = self._keys_for(model)
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.hkeys(self._dis).hgetall(cool)
                    disabled_list, cooling = await pipe.execute()
            except _ERRORS as exc:
                self._failed(exc, "wait")
            else:
                self._ok()
                disabled = set(disabled_list)
                earliest: float | None = None
                for kid in key_ids:
                    if kid in disabled:
                        continue
                    raw = cooling.get(kid)
                    until = float(raw) if raw is not None else None
                    if until is None or until <= now:
                        return 0.0
                    if earliest is None or until < earliest:
                        earliest = until
                return None if earliest is None else earliest - now
        return await self._local.wait(key_ids, model, now)

    async def disabled(self, key_ids: Sequence[str]) -> dict[str, str]:
        if self._use_redis():
            try:
                reasons: dict[str, str] = await self._redis.hgetall(self._dis)
            except _ERRORS as exc:
                self._failed(exc, "disabled")
            else:
                self._ok()
                return {kid: reasons[kid] for kid in key_ids if kid in reasons}
        return await self._local.disabled(key_ids)

    async def snapshot(self, key_ids: Sequence[str], now: float) -> dict[str, KeyStatus]:
        if self._use_redis():
            try:
                return await self._snapshot(key_ids, now)
            except _ERRORS as exc:
                self._failed(exc, "snapshot")
        return await self._local.snapshot(key_ids, now)

    async def _snapshot(self, key_ids: Sequence[str], now: float) -> dict[str, KeyStatus]:
        async with self._redis.pipeline(transaction=True) as pipe:
            for name in (self._dis, self._dis_at, self._fail, self._cnt, self._err, self._err_at, self._sfail):
                pipe.hgetall(name)
            pipe.smembers(self._models)
            dis, dis_at, fail, cnt, err, err_at, sfail, models = await pipe.execute()
        model_list = sorted(models)
        cooling: list[Any] = []
        if model_list:
            async with self._redis.pipeline(transaction=True) as pipe:
                for model in model_list:
                    _, cool, coolr = self._keys_for(model)
                    pipe.hgetall(cool).hgetall(coolr)
                cooling = await pipe.execute()
        self._ok()
        result: dict[str, KeyStatus] = {}
        for kid in key_ids:
            status = KeyStatus(kid, failures=int(fail.get(kid, 0)), stream_failures=int(sfail.get(kid, 0)))
            if kid in dis:
                status.disabled = True
                status.reason = dis[kid]
                status.disabled_at = float(dis_at[kid]) if kid in dis_at else None
            for i, model in enumerate(model_list):
                raw = cooling[2 * i].get(kid)
                if raw is not None and float(raw) > now:
                    status.cooldowns[model] = Cooldown(float(raw), cooling[2 * i + 1].get(kid, ""))
            status.counters = counters_dict([int(cnt.get(f"{kid}|{kind.value}", 0)) for kind in KIND_ORDER])
            if kid in err:
                status.last_error = err[kid]
                status.last_error_at = float(err_at[kid]) if kid in err_at else None
            result[kid] = status
        return result

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except _ERRORS:
            pass
