"""``RedisPoolStore``: the pool state shared by every replica, read from a local view.

Why a local view: the pick is on every request, and a pick inside Redis costs one round trip plus a scan of
every key id, cooldown and disable, so Redis mode fell to 0.08 x memory mode with 2,000 keys (issue 17).
Here every replica keeps the shared state (disabled keys, cooldowns) in an embedded ``MemoryPoolStore`` and
picks from it with no round trip at all; the round-robin cursor is per process (fairness across replicas
needs no shared cursor). Cost per request no longer depends on Redis or on the pool's size beyond what
memory mode pays.

What replicas must agree on is still written through, atomically, at the moment it is learned: a disable,
an enable and a cooldown are each one Lua script that changes the shared hashes, bumps the version counter
``ver`` and PUBLISHes the change on ``<prefix>events``, all in one step. Every replica applies those
messages to its view as they arrive (loopback: well under a millisecond) and polls ``ver`` every
``sync_interval`` seconds; a version it has not seen (a message lost while its subscription reconnected)
triggers a full reload. **Staleness bound**: a replica acts on a disable or a cooldown learned elsewhere
within ``sync_interval`` (default 1 s) plus one round trip, and normally within the pub/sub delivery time.

What need not be synchronous is batched: success counters and failure-streak resets are flushed every
``flush_interval`` seconds (and before a snapshot, and before this replica's next failure on the same key,
so its streak count stays exact). Failures, outcome counters and the admin snapshot use Redis directly:
they are off the common path.

Layout under ``prefix`` (default ``gg:``)::

    ver            string  version of the shared routing state (disables, enables, cooldowns)
    events         channel one message per change: "<ver>\\x1f<op>\\x1f<fields...>"
    cool:<model>   hash    key_id -> until (epoch seconds)
    coolr:<model>  hash    key_id -> cooldown reason
    models         set     models that have (had) cooldowns
    dis / dis_at   hashes  key_id -> disable reason / time
    fail / sfail   hashes  key_id -> consecutive transient / mid-stream failures
    cnt            hash    "<key_id>|<kind>" -> count
    err / err_at   hashes  key_id -> last error / time

The reload script reads ``cool:<model>`` hashes it names itself: on Redis Cluster use a hash-tagged prefix
such as ``{gg}:`` so that every key shares one slot.

A reload replaces the view's disabled list with what Redis held when the load script ran, so it must not undo
this replica's own writes that the load may not hold: every local write (disable, enable, cooldown) is logged
while its script is in flight, and a reload re-applies each write that was in flight at any time during the
load unless the write's version shows the load already held it (``0 < version <= loaded version``). A write
re-applied over a load that turns out to have held it (its version, known later, is at most that load's, or 0
for a write that changed nothing) may have hidden a later change to the same key, so the view then reloads
at the next poll (``sync_interval``): the error is on the side of this replica's own write, never against it.

When Redis fails (connection refused, timeout, any Redis error) nothing raises and requests do not wait:
picks never touched Redis anyway; a failed write is kept in the local view and in a backlog that is replayed
when Redis answers again (so a key found invalid during an outage stays disabled for every replica
afterwards). Whether Redis is usable is the process's one ``RedisLink``'s state: while it is degraded or
probing, writes go straight to local state, and the sync task waits for the link to be healthy again before it
resubscribes, replays and reloads. Every failure is counted by the link under ``pool``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from app.state.redis_link import ERRORS as _ERRORS
from app.state.redis_link import RedisLink

from .classify import OutcomeKind
from .store import KIND_ORDER, Cooldown, KeyStatus, MemoryPoolStore, Pick, counters_dict

__all__ = ["RedisPoolStore"]

_SEP = "\x1f"
_BACKLOG_MAX = 10_000

# KEYS: cooldown hash, cooldown-reason hash, models set, version, channel
# ARGV: until, reason, model, key_ids...
_COOL = """
local untl = tonumber(ARGV[1])
local changed = {}
for i = 4, #ARGV do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  if not cur or untl > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[2])
    changed[#changed + 1] = ARGV[i]
  end
end
redis.call('SADD', KEYS[3], ARGV[3])
if #changed == 0 then return 0 end
local v = redis.call('INCR', KEYS[4])
redis.call('PUBLISH', KEYS[5], v .. '\\31c\\31' .. ARGV[3] .. '\\31' .. ARGV[1] .. '\\31' .. ARGV[2] .. '\\31'
  .. table.concat(changed, '\\31'))
return v
"""

# KEYS: disabled hash, disabled-at hash, version, channel. ARGV: key_id, reason, at. The first reason wins.
_DISABLE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  local v = redis.call('INCR', KEYS[3])
  redis.call('PUBLISH', KEYS[4], v .. '\\31d\\31' .. ARGV[1] .. '\\31' .. ARGV[3] .. '\\31' .. ARGV[2])
  return v
end
return 0
"""

# KEYS: disabled hash, disabled-at hash, fail hash, stream-fail hash, version, channel. ARGV: key_id.
_ENABLE = """
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  local v = redis.call('INCR', KEYS[5])
  redis.call('PUBLISH', KEYS[6], v .. '\\31e\\31' .. ARGV[1])
  return v
end
return 0
"""

# KEYS: version, disabled hash, disabled-at hash, models set. ARGV: prefix.
# Returns {version, dis (flat), dis_at (flat), models, cool (flat) and coolr (flat) per model}: one atomic read.
_LOAD = """
local out = {redis.call('GET', KEYS[1]) or '0', redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
local models = redis.call('SMEMBERS', KEYS[4])
out[4] = models
for i = 1, #models do
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. 'cool:' .. models[i])
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. 'coolr:' .. models[i])
end
return out
"""

# KEYS: fail hash, counters hash, error hash, error-at hash, stream-fail hash
# ARGV: key_id, counter field, error ('' = none), at, streak ('0' none, '1' consecutive, '2' mid-stream),
#       '1' to count the outcome in the counters, '1' to reset the call streak first, '1' the stream streak
# (the resets are this replica's successes not yet flushed). Returns the streak's new length (0: none).
_COUNT = """
if ARGV[7] == '1' then redis.call('HDEL', KEYS[1], ARGV[1]) end
if ARGV[8] == '1' then redis.call('HDEL', KEYS[5], ARGV[1]) end
if ARGV[6] == '1' then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
end
if ARGV[5] == '1' then return redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
if ARGV[5] == '2' then return redis.call('HINCRBY', KEYS[5], ARGV[1], 1) end
return 0
"""

def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


@dataclass(slots=True)
class _Write:
    """A local write (``op`` as in the backlog) whose script was in flight while a reload may have run."""

    op: tuple[Any, ...]
    version: int | None = None  # what its script returned (0: it changed nothing); None while in flight
    done: bool = False          # answered or failed (a failed one is in the backlog)
    over: int = -1              # the highest loaded version it was re-applied over while in flight


class RedisPoolStore:
    """``PoolStore`` shared by replicas through Redis; picks from a local view, never raises for Redis."""

    def __init__(
        self,
        url: str,
        prefix: str = "gg:",
        *,
        link: RedisLink | None = None,
        client: aioredis.Redis | None = None,
        timeout: float = 0.5,
        retry_interval: float = 1.0,
        sync_interval: float = 1.0,
        flush_interval: float = 1.0,
    ) -> None:
        # The process's link (outage state, counters); a store built alone (tests) gets a private one.
        self._own_link = link is None
        self._link = link if link is not None else RedisLink(url, retry_interval=retry_interval)
        self._link.register("pool")
        self._redis: aioredis.Redis = client or self._link.client(timeout=timeout)
        self._p = prefix
        self.sync_interval = sync_interval
        self._flush_interval = flush_interval
        self._local = MemoryPoolStore()
        self.reloads = 0
        self._version = -1  # last shared version applied to the local view (-1: never loaded)
        self._started = False
        self._loading = False
        self._loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._backlog: list[tuple[Any, ...]] = []  # writes Redis missed during an outage, replayed after
        self._writes: dict[int, _Write] = {}  # local writes a reload in flight may not hold (by sequence)
        self._write_seq = 0
        self._loads = 0  # reloads in flight: while any is, answered writes stay logged for it
        self._pending_ok: dict[str, int] = {}
        self._pending_reset: set[str] = set()
        self._pending_sreset: set[str] = set()
        self._model_keys: dict[str, tuple[str, str]] = {}
        self._dis, self._dis_at = prefix + "dis", prefix + "dis_at"
        self._fail, self._cnt = prefix + "fail", prefix + "cnt"
        self._sfail = prefix + "sfail"
        self._err, self._err_at = prefix + "err", prefix + "err_at"
        self._models = prefix + "models"
        self._ver, self._channel = prefix + "ver", prefix + "events"
        self._cool_script = self._redis.register_script(_COOL)
        self._disable_script = self._redis.register_script(_DISABLE)
        self._enable_script = self._redis.register_script(_ENABLE)
        self._load_script = self._redis.register_script(_LOAD)
        self._count_script = self._redis.register_script(_COUNT)

    # -- health ---------------------------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while Redis is failing and the local view may miss other replicas' changes."""
        return not self._link.usable()

    @property
    def redis_errors(self) -> int:
        return self._link.errors.get("pool", 0)

    def _use_redis(self) -> bool:
        return self._link.usable()

    def _failed(self, exc: BaseException, op: str) -> None:
        self._link.failed("pool", exc, op)

    def _keys_for(self, model: str) -> tuple[str, str]:
        """Cooldown and cooldown-reason key names for ``model`` (built once per model)."""
        keys = self._model_keys.get(model)
        if keys is None:
            keys = self._model_keys[model] = (self._p + "cool:" + model, self._p + "coolr:" + model)
        return keys

    async def ping(self) -> bool:
        """Whether Redis answers now (for /health); never raises."""
        try:
            await self._redis.ping()
        except _ERRORS:
            return False
        return True

    # -- the local view -------------------------------------------------------------------------------------

    async def _ensure_started(self) -> None:
        """First use: load the shared state (so a new replica starts agreeing) and start the sync task.
        Concurrent first uses wait for that one load: none may pick from the still empty view."""
        if self._loading:
            await self._loaded.wait()
            return
        self._loading = True
        try:
            if self._link.usable():
                try:
                    await self.refresh(force=True)
                except _ERRORS as exc:
                    self._failed(exc, "load")
            self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-pool-sync")
            self._started = True
        finally:
            loaded = self._loaded
            if not self._started:  # cancelled: the next use loads again
                self._loading, self._loaded = False, asyncio.Event()
            loaded.set()

    async def refresh(self, force: bool = False) -> bool:
        """Reload the shared state when its version moved past the view's (or ``force``); returns whether
        it reloaded. Raises Redis errors: the caller decides how an outage is handled."""
        if not force:
            raw = await self._redis.get(self._ver)
            if int(raw or 0) == self._version:
                return False
        self._loads += 1
        try:
            res = await self._load_script(keys=(self._ver, self._dis, self._dis_at, self._models),
                                          args=(self._p,))
        finally:
            self._loads -= 1
        version, dis, dis_at, models = int(res[0]), _pairs(res[1]), _pairs(res[2]), res[3]
        local = self._local
        local.load_disabled({kid: (reason, float(dis_at.get(kid, 0.0))) for kid, reason in dis.items()})
        for i, model in enumerate(models):
            untils, reasons = _pairs(res[4 + 2 * i]), _pairs(res[5 + 2 * i])
            for kid, until in untils.items():
                local.cool_now((kid,), model, float(until), reasons.get(kid, ""))
        for op in self._backlog:  # what Redis has not heard yet still holds here
            self._reapply(op)
        stale = False
        for write in self._writes.values():  # this replica's writes the load may have missed (module doc)
            if write.version is not None and 0 < write.version <= version:
                continue  # held by the load
            if write.done:
                if write.version is not None:  # answered, changing nothing (0) or after the load (> version)
                    self._reapply(write.op)
                    stale = stale or write.version == 0
            else:
                self._reapply(write.op)
                write.over = version
        if not self._loads:
            self._writes = {seq: w for seq, w in self._writes.items() if not w.done}
        self._version = -1 if stale else version  # stale: reload at the next poll
        self.reloads += 1
        return True

    def _reapply(self, op: tuple[Any, ...]) -> None:
        if op[0] == "d":
            self._local.disable_now(op[1], op[2], float(op[3]))
        elif op[0] == "e":
            self._local.enable_now(op[1])
        else:
            _, until, reason, model, ids = op
            self._local.cool_now(ids, model, float(until), reason)

    async def _write(self, op: tuple[Any, ...], script: Callable[..., Awaitable[Any]], keys: Sequence[str],
                     args: Sequence[str], what: str) -> None:
        """Write a change already applied to the view through to Redis, logged for any reload meanwhile."""
        if not self._use_redis():
            self._missed(op)
            return
        self._write_seq += 1
        seq, write = self._write_seq, _Write(op)
        self._writes[seq] = write
        try:
            write.version = int(await script(keys=keys, args=args))
        except _ERRORS as exc:
            self._failed(exc, what)
            self._missed(op)  # the backlog holds it from now on
        finally:
            write.done = True
            if not self._loads:
                self._writes.pop(seq, None)
        if write.over >= 0 and write.version is not None and write.version <= write.over:
            self._version = -1  # re-applied over a load that held it: reload at the next poll

    def _apply(self, message: str) -> None:
        """Apply one change published by a write script (ours included: they arrive in version order)."""
        parts = message.split(_SEP)
        version = int(parts[0])
        if version <= self._version:
            return  # already part of the loaded state
        if version != self._version + 1:
            self._version = -1  # a gap: some message was missed; the next poll reloads
        else:
            self._version = version
        op, local = parts[1], self._local
        if op == "c":
            local.cool_now(parts[5:], parts[2], float(parts[3]), parts[4])
        elif op == "d":
            local.disable_now(parts[2], _SEP.join(parts[4:]), float(parts[3]))
        elif op == "e":
            local.enable_now(parts[2])

    async def _run(self) -> None:
        """Keep the view in sync (pub/sub, version poll), flush batched counters, replay the backlog."""
        loop = asyncio.get_running_loop()
        while not self._closing:
            if not self._link.usable():
                await self._link.wait_healthy()  # the link probes; a request never does
                continue
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    await self._replay()
                    await self.refresh(force=True)  # after subscribing: no change can fall in between
                    next_poll = loop.time() + self.sync_interval
                    next_flush = loop.time() + self._flush_interval
                    while not self._closing:
                        now = loop.time()
                        msg = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=max(0.0, min(next_poll, next_flush) - now))
                        if msg is not None and msg.get("type") == "message":
                            self._apply(msg["data"])
                        now = loop.time()
                        if now >= next_poll:
                            await self._replay()  # writes that failed while the subscription stayed up
                            await self.refresh(force=self._version < 0)
                            next_poll = now + self.sync_interval
                        if now >= next_flush:
                            await self.flush()
                            next_flush = now + self._flush_interval
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                if self._closing:
                    return
                self._failed(exc, "sync")
                await asyncio.sleep(0.05)  # never a busy loop, even with retry_interval=0

    async def _replay(self) -> None:
        """Write what Redis missed during an outage (disables, cooldowns, enables), oldest first."""
        while self._backlog:
            op = self._backlog[0]
            if op[0] == "d":
                await self._disable_script(keys=self._disable_keys(), args=op[1:])
            elif op[0] == "e":
                await self._enable_script(keys=self._enable_keys(), args=op[1:])
            else:
                _, until, reason, model, ids = op
                await self._cool_script(keys=self._cool_keys(model), args=(until, reason, model, *ids))
            self._backlog.pop(0)

    def _missed(self, op: tuple[Any, ...]) -> None:
        if len(self._backlog) < _BACKLOG_MAX:
            self._backlog.append(op)

    async def flush(self) -> None:
        """Write the batched success counters and streak resets (one pipelined round trip)."""
        if not (self._pending_ok or self._pending_reset or self._pending_sreset):
            return
        oks, resets, sresets = self._pending_ok, self._pending_reset, self._pending_sreset
        self._pending_ok, self._pending_reset, self._pending_sreset = {}, set(), set()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for kid, n in oks.items():
                    pipe.hincrby(self._cnt, kid + "|ok", n)
                if resets:
                    pipe.hdel(self._fail, *resets)
                if sresets:
                    pipe.hdel(self._sfail, *sresets)
                await pipe.execute()
        except _ERRORS:
            for kid, n in oks.items():  # keep them for the next flush
                self._pending_ok[kid] = self._pending_ok.get(kid, 0) + n
            self._pending_reset |= resets
            self._pending_sreset |= sresets
            raise

    # -- hot path -------------------------------------------------------------------------------------------

    async def pick(self, key_ids: Sequence[str], model: str, exclude: Collection[str], now: float,
                   cursor: str | None = None) -> Pick:
        if not self._started:
            await self._ensure_started()
        return self._local.pick_now(key_ids, model, exclude, now, cursor)

    async def success(self, key_id: str, stream: bool = False) -> None:
        await self._local.success(key_id, stream)
        self._pending_ok[key_id] = self._pending_ok.get(key_id, 0) + 1
        self._pending_reset.add(key_id)
        if stream:
            self._pending_sreset.add(key_id)

    # -- outcomes -------------------------------------------------------------------------------------------

    async def _count(self, key_id: str, kind: OutcomeKind, error: str | None, now: float | None,
                     streak: str, tally: bool = True) -> int | None:
        if not self._use_redis():
            return None
        at = time.time() if now is None else now
        reset = key_id in self._pending_reset
        sreset = key_id in self._pending_sreset
        try:
            count = await self._count_script(
                keys=(self._fail, self._cnt, self._err, self._err_at, self._sfail),
                args=(key_id, f"{key_id}|{kind.value}", error or "", repr(at), streak, "1" if tally else "0",
                      "1" if reset else "0", "1" if sreset else "0"),
            )
        except _ERRORS as exc:
            self._failed(exc, "count")
            return None
        self._pending_reset.discard(key_id)
        self._pending_sreset.discard(key_id)
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

    def _cool_keys(self, model: str) -> tuple[str, ...]:
        cool, coolr = self._keys_for(model)
        return (cool, coolr, self._models, self._ver, self._channel)

    def _disable_keys(self) -> tuple[str, ...]:
        return (self._dis, self._dis_at, self._ver, self._channel)

    def _enable_keys(self) -> tuple[str, ...]:
        return (self._dis, self._dis_at, self._fail, self._sfail, self._ver, self._channel)

    async def cool(self, key_id: str, model: str, until: float, reason: str) -> None:
        await self.cool_many((key_id,), model, until, reason)

    async def cool_many(self, key_ids: Sequence[str], model: str, until: float, reason: str) -> None:
        self._local.cool_now(key_ids, model, until, reason)
        op = ("c", repr(until), reason, model, tuple(key_ids))
        await self._write(op, self._cool_script, self._cool_keys(model),
                          (repr(until), reason, model, *key_ids), "cool")

    async def disable(self, key_id: str, reason: str, now: float | None = None) -> None:
        at = time.time() if now is None else now
        self._local.disable_now(key_id, reason, at)
        op = ("d", key_id, reason, repr(at))
        await self._write(op, self._disable_script, self._disable_keys(), op[1:], "disable")

    async def enable(self, key_id: str) -> None:
        await self._local.enable(key_id)
        self._pending_reset.discard(key_id)
        self._pending_sreset.discard(key_id)
        op = ("e", key_id)
        await self._write(op, self._enable_script, self._enable_keys(), op[1:], "enable")

    # -- reads ----------------------------------------------------------------------------------------------

    async def wait(self, key_ids: Sequence[str], model: str, now: float) -> float | None:
        if not self._started:
            await self._ensure_started()
        return await self._local.wait(key_ids, model, now)

    async def disabled(self, key_ids: Sequence[str]) -> dict[str, str]:
        if not self._started:
            await self._ensure_started()
        return await self._local.disabled(key_ids)

    async def snapshot(self, key_ids: Sequence[str], now: float) -> dict[str, KeyStatus]:
        if self._use_redis():
            try:
                await self.flush()
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
                    cool, coolr = self._keys_for(model)
                    pipe.hgetall(cool).hgetall(coolr)
                cooling = await pipe.execute()
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
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            # redis-py may turn a cancellation inside a timed read into a timeout: the flag ends the loop.
            task.cancel()
            await asyncio.wait((task,), timeout=2.0)
        if self._link.usable():
            try:
                await self.flush()
            except _ERRORS:
                pass
        if self._own_link:
            await self._link.close()
