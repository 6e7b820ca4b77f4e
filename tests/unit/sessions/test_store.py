"""One behavioural suite for every SessionStore (memory and Redis).

The Redis variant needs a Redis at 127.0.0.1:6379; when it is not reachable these tests FAIL rather than skip.
Expiry is driven by the ``now`` argument (a fake clock), in both stores.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import orjson
import pytest
import redis.asyncio as aioredis

from app.sessions import (
    ChatBusy,
    Limits,
    MemoryRateLimiter,
    MemorySessionStore,
    RateLimiter,
    RedisRateLimiter,
    RedisSessionStore,
    Session,
    SessionLimitReached,
    Saved,
    SessionStore,
    StoreUnavailable,
    TurnRecord,
    new_chat_id,
)
from app.sessions.turns import KEEP_TURNS
from tests.unit.sessions.redis_support import DEAD_URL, REDIS_URL, redis_prefix

NOW = 1_750_000_000.0
TTL = 60.0

Factory = Callable[..., SessionStore]
RedisPair = tuple[RedisSessionStore, RedisSessionStore, aioredis.Redis, str]


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    """``make(**limits)`` builds a store; every store made in one test shares one state (two replicas)."""
    made: list[SessionStore] = []
    memory: dict[Limits, MemorySessionStore] = {}

    async with redis_prefix() as prefix:
        def factory(ttl: float = TTL, max_per_user: int = 5, max_total: int = 100) -> SessionStore:
            limits = Limits(ttl, max_per_user, max_total)
            if request.param == "memory":
                return memory.setdefault(limits, MemorySessionStore(limits))
            store = RedisSessionStore(REDIS_URL, limits, prefix=prefix, lease=5.0)
            made.append(store)
            return store

        try:
            yield factory
            for store in made:
                assert store.redis_errors == 0  # type: ignore[attr-defined]
        finally:
            for store in made:
                await store.close()


@pytest.fixture
def store(make: Factory) -> SessionStore:
    return make()


def session(user: str = "alice", **fields: object) -> Session:
    values: dict[object, object] = {"chat_id": new_chat_id(), "user_id": user, "model": "gemini-2.5-flash",
                                    "generation_config": {"temperature": 0.5, "maxOutputTokens": 100},
                                    "history": [], "created": NOW}
    values.update(fields)
    return Session(**values)  # type: ignore[arg-type]


EXCHANGE = [{"role": "user", "parts": [{"text": "hi ☃"}]},
            {"role": "model", "parts": [{"text": "hello", "thoughtSignature": "c2lnbg=="}]}]


def plain(history: list[object]) -> object:
    """A history as JSON values (the Redis store's ``begin`` hands stored turns out as Fragments)."""
    return orjson.loads(orjson.dumps(history))


async def save(store: SessionStore, chat_id: str, history: list[dict[str, object]], now: float,
               expect: int = 0, turn_id: str = "t-1") -> Saved:
    """One turn's save as the service does it: under the chat's lease, onto version ``expect``."""
    lease = await store.acquire(chat_id)
    try:
        return await store.save_history(chat_id, history, now, lease=lease, expect=expect,
                                        turn=TurnRecord(turn_id, "d", "answer"))
    finally:
        await store.release(lease)


@asynccontextmanager
async def held(store: SessionStore, chat_id: str) -> AsyncIterator[None]:
    lease = await store.acquire(chat_id)
    try:
        yield
    finally:
        await store.release(lease)


# -- basic life ----------------------------------------------------------------------------------------------


async def test_create_then_load_round_trips(store: SessionStore) -> None:
    s = session(history=EXCHANGE)
    assert await store.create(s, NOW) == []
    loaded = await store.load(s.chat_id, NOW + 1)
    assert loaded == s


async def test_unknown_chat_is_none(store: SessionStore) -> None:
    assert await store.load(new_chat_id(), NOW) is None
    assert await save(store, new_chat_id(), EXCHANGE, NOW) is Saved.GONE
    assert await store.delete(new_chat_id(), NOW) is False


async def test_save_history_replaces_it(store: SessionStore) -> None:
    s = session()
    await store.create(s, NOW)
    assert await save(store, s.chat_id, EXCHANGE, NOW + 1) is Saved.SAVED
    loaded = await store.load(s.chat_id, NOW + 2)
    assert loaded is not None and loaded.history == EXCHANGE


async def test_loaded_session_is_a_copy(store: SessionStore) -> None:
    s = session(history=list(EXCHANGE))
    await store.create(s, NOW)
    s.history.append({"role": "user", "parts": [{"text": "not saved"}]})
    loaded = await store.load(s.chat_id, NOW)
    assert loaded is not None and loaded.history == EXCHANGE
    loaded.history.append({"role": "user", "parts": [{"text": "not saved either"}]})
    again = await store.load(s.chat_id, NOW)
    assert again is not None and again.history == EXCHANGE


async def test_delete(store: SessionStore) -> None:
    s = session()
    await store.create(s, NOW)
    assert await store.delete(s.chat_id, NOW + 1) is True
    assert await store.load(s.chat_id, NOW + 1) is None
    assert await store.delete(s.chat_id, NOW + 1) is False
    assert await store.count(NOW + 1) == 0


# -- expiry --------------------------------------------------------------------------------------------------


async def test_expires_after_ttl_idle(store: SessionStore) -> None:
    s = session()
    await store.create(s, NOW)
    assert await store.load(s.chat_id, NOW + TTL) is None
    assert await store.delete(s.chat_id, NOW + TTL) is False


async def test_use_refreshes_the_idle_timer(store: SessionStore) -> None:
    s = session()
    await store.create(s, NOW)
    assert await store.load(s.chat_id, NOW + TTL - 1) is not None
    assert await save(store, s.chat_id, EXCHANGE, NOW + 2 * TTL - 2) is Saved.SAVED
    assert await store.load(s.chat_id, NOW + 3 * TTL - 3) is not None
    assert await store.load(s.chat_id, NOW + 4 * TTL - 2) is None


async def test_save_after_expiry_is_refused(store: SessionStore) -> None:
    s = session()
    await store.create(s, NOW)
    assert await save(store, s.chat_id, EXCHANGE, NOW + TTL + 1) is Saved.GONE


async def test_count_and_sweep_ignore_expired(store: SessionStore) -> None:
    old, new = session(), session("bob")
    await store.create(old, NOW)
    await store.create(new, NOW + 30)
    assert await store.count(NOW + 31) == 2
    assert await store.sweep(NOW + TTL + 1) == 1
    assert await store.count(NOW + TTL + 1) == 1
    assert await store.load(new.chat_id, NOW + TTL + 1) is not None


# -- caps ----------------------------------------------------------------------------------------------------


async def test_per_user_cap_evicts_the_least_recently_used(make: Factory) -> None:
    store = make(max_per_user=2)
    a, b, c = session(), session(), session()
    await store.create(a, NOW)
    await store.create(b, NOW + 1)
    await store.load(a.chat_id, NOW + 2)  # a is now more recently used than b
    assert await store.create(c, NOW + 3) == [b.chat_id]
    assert await store.load(b.chat_id, NOW + 4) is None
    assert await store.load(a.chat_id, NOW + 4) is not None
    assert await store.load(c.chat_id, NOW + 4) is not None


async def test_per_user_cap_is_per_user(make: Factory) -> None:
    store = make(max_per_user=1)
    assert await store.create(session("alice"), NOW) == []
    assert await store.create(session("bob"), NOW) == []
    assert await store.count(NOW) == 2


async def test_expired_sessions_do_not_count_against_the_user(make: Factory) -> None:
    store = make(max_per_user=1)
    await store.create(session(), NOW)
    assert await store.create(session(), NOW + TTL + 1) == []


async def test_total_cap_refuses_without_evicting(make: Factory) -> None:
    store = make(max_per_user=2, max_total=2)
    a1, a2 = session("alice"), session("alice")
    await store.create(a1, NOW)
    await store.create(a2, NOW + 1)
    with pytest.raises(SessionLimitReached):
        await store.create(session("bob"), NOW + 2)
    assert await store.count(NOW + 2) == 2
    # alice at her own cap can still start one: her oldest makes room, the total stays at the cap.
    a3 = session("alice")
    assert await store.create(a3, NOW + 3) == [a1.chat_id]
    await store.delete(a2.chat_id, NOW + 4)
    assert await store.create(session("bob"), NOW + 5) == []


async def test_expired_sessions_do_not_count_against_the_total(make: Factory) -> None:
    store = make(max_total=1)
    await store.create(session("alice"), NOW)
    with pytest.raises(SessionLimitReached):
        await store.create(session("bob"), NOW + 1)
    assert await store.create(session("bob"), NOW + TTL + 1) == []


# -- replicas and concurrency --------------------------------------------------------------------------------


async def test_replicas_share_sessions(make: Factory) -> None:
    one, two = make(), make()
    s = session()
    await one.create(s, NOW)
    assert await save(two, s.chat_id, EXCHANGE, NOW + 1) is Saved.SAVED
    loaded = await one.load(s.chat_id, NOW + 2)
    assert loaded is not None and loaded.history == EXCHANGE
    assert await two.delete(s.chat_id, NOW + 3)
    assert await one.load(s.chat_id, NOW + 3) is None


async def test_lock_serialises_turns_of_one_chat_across_replicas(make: Factory) -> None:
    one, two = make(), make()
    chat = new_chat_id()
    trace: list[str] = []

    async def turn(store: SessionStore, name: str) -> None:
        async with held(store, chat):
            trace.append(f"{name}+")
            await asyncio.sleep(0.05)
            trace.append(f"{name}-")

    await asyncio.gather(turn(one, "a"), turn(two, "b"), turn(one, "c"))
    pairs = [trace[i:i + 2] for i in range(0, len(trace), 2)]
    assert all(p[0][0] == p[1][0] and p[0][1] == "+" and p[1][1] == "-" for p in pairs), trace


async def test_lock_does_not_block_other_chats(store: SessionStore) -> None:
    trace: list[str] = []

    async def turn(chat: str, name: str) -> None:
        async with held(store, chat):
            trace.append(f"{name}+")
            await asyncio.sleep(0.05)
            trace.append(f"{name}-")

    await asyncio.gather(turn(new_chat_id(), "a"), turn(new_chat_id(), "b"))
    assert sorted(trace[:2]) == ["a+", "b+"]  # both held at once


async def test_lock_is_released_when_the_turn_fails(store: SessionStore) -> None:
    chat = new_chat_id()
    with pytest.raises(RuntimeError):
        async with held(store, chat):
            raise RuntimeError("turn failed")
    async with asyncio.timeout(2):
        async with held(store, chat):
            pass


# -- Redis outage --------------------------------------------------------------------------------------------


async def test_redis_outage_raises_store_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisSessionStore(DEAD_URL.replace("redis://", "redis://:hunter2@"), Limits(TTL, 5, 100),
                              timeout=0.2)
    try:
        with pytest.raises(StoreUnavailable):
            await store.load(new_chat_id(), NOW)
        with pytest.raises(StoreUnavailable):  # the link is degraded: refused at once, Redis not asked
            await store.create(session(), NOW)
        assert store.redis_errors == 1
        assert "hunter2" not in caplog.text
        assert sum("sessions during load" in r.getMessage() for r in caplog.records) == 1  # once per outage
    finally:
        await store.close()


# -- the turn lease, fencing and compare-and-set (issue 12, items 4 and 5) -----------------------------------


async def test_a_waiter_is_told_busy_instead_of_hanging(make: Factory) -> None:
    one, two = make(), make()
    chat = new_chat_id()
    lease = await one.acquire(chat)
    try:
        with pytest.raises(ChatBusy):
            await two.acquire(chat, wait=0.2)
        with pytest.raises(ChatBusy):
            await one.acquire(chat, wait=0.2)  # a waiter in the holder's own process too
    finally:
        await one.release(lease)
    again = await two.acquire(chat, wait=2)
    await two.release(again)


async def test_a_cancelled_waiter_leaves_the_lock_usable(store: SessionStore) -> None:
    chat = new_chat_id()
    lease = await store.acquire(chat)
    waiter = asyncio.create_task(store.acquire(chat, wait=5))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await store.release(lease)
    async with asyncio.timeout(3):
        await store.release(await store.acquire(chat))


async def test_a_save_after_release_is_fenced_off(store: SessionStore) -> None:
    s = session()
    await store.create(s, NOW)
    lease = await store.acquire(s.chat_id)
    await store.release(lease)
    assert await store.save_history(s.chat_id, EXCHANGE, NOW + 1, lease=lease, expect=0,
                                    turn=TurnRecord("t", "d", "a")) is Saved.LOST
    loaded = await store.load(s.chat_id, NOW + 1)
    assert loaded is not None and loaded.history == [] and loaded.version == 0


async def test_a_save_onto_an_old_version_is_refused(store: SessionStore) -> None:
    s = session()
    await store.create(s, NOW)
    assert await save(store, s.chat_id, EXCHANGE, NOW + 1, expect=0, turn_id="first") is Saved.SAVED
    # A turn that read version 0 (before "first" was saved) must not overwrite it.
    assert await save(store, s.chat_id, EXCHANGE[:1], NOW + 2, expect=0, turn_id="late") is Saved.STALE
    loaded = await store.load(s.chat_id, NOW + 3)
    assert loaded is not None and loaded.history == EXCHANGE and loaded.version == 1
    assert [t.id for t in loaded.turns] == ["first"]


async def test_versions_count_saves_and_the_last_turns_are_kept(store: SessionStore) -> None:
    s = session()
    await store.create(s, NOW)
    for i in range(KEEP_TURNS + 2):
        lease = await store.acquire(s.chat_id)
        try:
            assert await store.save_history(s.chat_id, EXCHANGE, NOW + i, lease=lease, expect=i,
                                            turn=TurnRecord(f"t{i}", f"d{i}", f"answer ☃ {i}")) is Saved.SAVED
        finally:
            await store.release(lease)
    loaded = await store.load(s.chat_id, NOW + 10)
    assert loaded is not None and loaded.version == KEEP_TURNS + 2
    assert loaded.turns == [TurnRecord(f"t{i}", f"d{i}", f"answer ☃ {i}") for i in range(2, KEEP_TURNS + 2)]


async def test_memory_locks_leave_nothing_behind() -> None:
    store = MemorySessionStore(Limits(TTL, 5, 100), wait=0.1)
    chat = new_chat_id()
    lease = await store.acquire(chat)
    with pytest.raises(ChatBusy):
        await store.acquire(chat)
    await store.release(lease)
    await store.release(lease)  # twice is harmless
    assert len(store._locks) == 0 and store._holders == {}


# -- Redis: renewal, dead holders, lost leases, stalls -------------------------------------------------------


@pytest.fixture
async def redis_pair() -> AsyncIterator[RedisPair]:
    """Two replicas with a 0.3 s lease, and a raw client on the same prefix."""
    async with redis_prefix() as prefix:
        limits = Limits(TTL, 5, 100)
        one = RedisSessionStore(REDIS_URL, limits, prefix=prefix, lease=0.3, wait=0.2, timeout=0.4, poll=0.01,
                                retry_interval=0.05)
        two = RedisSessionStore(REDIS_URL, limits, prefix=prefix, lease=0.3, wait=0.2, timeout=0.4, poll=0.01,
                                retry_interval=0.05)
        raw = aioredis.from_url(REDIS_URL, decode_responses=True)
        try:
            yield one, two, raw, prefix
        finally:
            for closable in (one, two):
                await closable.close()
            await raw.aclose()


async def until(predicate: Callable[[], object], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_running_turn_keeps_its_lease_past_the_lease_period(redis_pair: RedisPair) -> None:
    one, two, _, _ = redis_pair
    s = session()
    await one.create(s, NOW)
    lease = await one.acquire(s.chat_id)
    try:
        for _ in range(4):  # four lease periods: only the renewals keep it
            await asyncio.sleep(0.3)
            with pytest.raises(ChatBusy):
                await two.acquire(s.chat_id, wait=0.05)
        assert not lease.lost
        assert await one.save_history(s.chat_id, EXCHANGE, NOW + 1, lease=lease, expect=0,
                                      turn=TurnRecord("t", "d", "a")) is Saved.SAVED
    finally:
        await one.release(lease)


async def test_a_dead_holder_blocks_the_chat_for_one_lease_only(redis_pair: RedisPair) -> None:
    _, two, raw, prefix = redis_pair
    chat = new_chat_id()
    # A replica that was killed: its lease is never renewed and never released.
    await raw.set(f"{prefix}lock:{chat}", "a-replica-that-was-killed", px=300)
    lease = await two.acquire(chat, wait=3)
    await two.release(lease)


async def test_a_lease_whose_lock_vanished_is_fenced_off(redis_pair: RedisPair) -> None:
    """A Redis restart that lost the lock key (or a stall past the lease) lets another turn in; the first
    turn's save is then refused, and its lease learns it is lost at its next renewal."""
    one, two, raw, prefix = redis_pair
    s = session()
    await one.create(s, NOW)
    first = await one.acquire(s.chat_id)
    await raw.delete(f"{prefix}lock:{s.chat_id}")
    second = await two.acquire(s.chat_id)
    try:
        assert await two.save_history(s.chat_id, EXCHANGE, NOW + 1, lease=second, expect=0,
                                      turn=TurnRecord("second", "d", "a")) is Saved.SAVED
        assert await one.save_history(s.chat_id, EXCHANGE, NOW + 2, lease=first, expect=1,
                                      turn=TurnRecord("first", "d", "a")) is Saved.LOST
        await until(lambda: first.lost)
    finally:
        await one.release(first)
        await two.release(second)
    loaded = await one.load(s.chat_id, NOW + 3)
    assert loaded is not None and [t.id for t in loaded.turns] == ["second"] and loaded.version == 1
    assert await raw.get(f"{prefix}lock:{s.chat_id}") is None  # the stale holder's release freed nothing else


async def test_a_save_that_reaches_redis_too_late_is_refused(redis_pair: RedisPair) -> None:
    """A save Redis runs after its caller stopped waiting for it (a stall) must not land: the caller answered
    503 by then."""
    one, _, _, _ = redis_pair
    s = session()
    await one.create(s, NOW)
    lease = await one.acquire(s.chat_id)
    try:
        lease.clock_offset_ms -= 10_000  # as if Redis ran the save ten seconds after it was sent
        assert await one.save_history(s.chat_id, EXCHANGE, NOW + 1, lease=lease, expect=0,
                                      turn=TurnRecord("t", "d", "a")) is Saved.LOST
    finally:
        await one.release(lease)
    loaded = await one.load(s.chat_id, NOW + 2)
    assert loaded is not None and loaded.history == [] and loaded.version == 0


async def test_an_interrupted_save_that_landed_counts_as_saved(redis_pair: RedisPair,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    one, _, _, _ = redis_pair
    s = session()
    await one.create(s, NOW)
    real = one._save

    async def lands_then_connection_drops(**kwargs: object) -> object:
        await real(**kwargs)
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(one, "_save", lands_then_connection_drops)
    lease = await one.acquire(s.chat_id)
    try:
        assert await one.save_history(s.chat_id, EXCHANGE, NOW + 1, lease=lease, expect=0,
                                      turn=TurnRecord("t", "d", "a")) is Saved.SAVED
    finally:
        await one.release(lease)


async def test_an_interrupted_save_that_did_not_land_is_unavailable(redis_pair: RedisPair,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    one, _, _, _ = redis_pair
    s = session()
    await one.create(s, NOW)

    async def never_arrives(**_: object) -> object:
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(one, "_save", never_arrives)
    lease = await one.acquire(s.chat_id)
    try:
        with pytest.raises(StoreUnavailable):
            await one.save_history(s.chat_id, EXCHANGE, NOW + 1, lease=lease, expect=0,
                                   turn=TurnRecord("t", "d", "a"))
    finally:
        await one.release(lease)
    await asyncio.wait_for(one._link.wait_healthy(), 5)  # the failed save degraded the link until its probe
    loaded = await one.load(s.chat_id, NOW + 2)
    assert loaded is not None and loaded.version == 0


# -- begin: load, the user's rate limit and the lease in one step (issue 17) ---------------------------------

def limiter_for(store: SessionStore, limit: int, window: float) -> RateLimiter:
    """The user rate limit of ``store``'s deployment: shared through Redis, or the one process's own (the
    memory "replicas" of one test are one store object)."""
    if isinstance(store, RedisSessionStore):
        return RedisRateLimiter(REDIS_URL, limit, window, prefix=store._p + "rl:")
    if not hasattr(store, "test_limiter"):
        store.test_limiter = MemoryRateLimiter(limit, window)  # type: ignore[attr-defined]
    return store.test_limiter  # type: ignore[attr-defined,no-any-return]


async def test_begin_leases_counts_the_user_and_a_save_releases(make: Factory) -> None:
    one, two = make(), make()  # two replicas
    s = session()
    await one.create(s, NOW)
    limit_one, limit_two = limiter_for(one, 1, 60.0), limiter_for(two, 1, 60.0)
    begun = await one.begin(s.chat_id, NOW, claimed="alice", turn_id=None, go=True, limiter=limit_one)
    assert begun.session is not None and begun.lease is not None and begun.wait is None
    saved = await one.save_history(s.chat_id, EXCHANGE, NOW + 1, lease=begun.lease, expect=0,
                                   turn=TurnRecord("t-1", "d", "answer"), key_id="key-1", release=True)
    assert saved is Saved.SAVED
    refused = await two.begin(s.chat_id, NOW + 2, claimed=None, turn_id=None, go=True, limiter=limit_two)
    assert refused.lease is None and refused.wait is not None and 57.0 < refused.wait <= 59.0
    again = await two.begin(s.chat_id, NOW + 61, claimed=None, turn_id=None, go=True, limiter=limit_two)
    assert again.lease is not None and again.session is not None  # the save released the lease
    assert plain(again.session.history) == EXCHANGE and again.session.key_id == "key-1"
    await two.release(again.lease)
    for limiter in (limit_one, limit_two):
        await limiter.close()


async def test_begin_without_go_or_for_a_stored_turn_takes_nothing(make: Factory) -> None:
    store = make()
    s = session()
    await store.create(s, NOW)
    limiter = limiter_for(store, 2, 60.0)
    first = await store.begin(s.chat_id, NOW, claimed=None, turn_id="t-9", go=True, limiter=limiter)
    assert first.lease is not None
    await store.save_history(s.chat_id, EXCHANGE, NOW, lease=first.lease, expect=0,
                             turn=TurnRecord("t-9", "d", "stored"), release=True)
    for kwargs in ({"turn_id": None, "go": False}, {"turn_id": "t-9", "go": True}):
        begun = await store.begin(s.chat_id, NOW, claimed=None, limiter=limiter, **kwargs)  # type: ignore[arg-type]
        assert begun.session is not None and begun.lease is None and begun.wait is None
    assert (await store.begin(s.chat_id, NOW, claimed="mallory", turn_id=None, go=True,
                              limiter=limiter)).session is None  # another user's chat looks unknown
    assert (await store.begin(new_chat_id(), NOW, claimed=None, turn_id=None, go=True,
                              limiter=limiter)).session is None
    second = await store.begin(s.chat_id, NOW, claimed=None, turn_id=None, go=True, limiter=limiter)
    assert second.lease is not None  # the budget's second call: the calls above took none of it
    await store.release(second.lease)
    third = await store.begin(s.chat_id, NOW, claimed=None, turn_id=None, go=True, limiter=limiter)
    assert third.lease is None and third.wait is not None
    await limiter.close()


async def test_a_redis_turn_is_two_round_trips(redis_pair: RedisPair) -> None:
    one, _, _, prefix = redis_pair
    s = session()
    await one.create(s, NOW)
    limiter = RedisRateLimiter(REDIS_URL, 5, 1.0, prefix=prefix + "rl:")
    before = one.round_trips
    begun = await one.begin(s.chat_id, NOW, claimed=None, turn_id="t-1", go=True, limiter=limiter)
    assert begun.lease is not None
    assert await one.save_history(s.chat_id, EXCHANGE, NOW + 1, lease=begun.lease, expect=0,
                                  turn=TurnRecord("t-1", "d", "a"), release=True) is Saved.SAVED
    await one.release(begun.lease)  # already released by the save: no third round trip
    assert one.round_trips - before == 2
    await limiter.close()


async def test_begin_waits_for_a_busy_chat_then_reads_under_the_lease(redis_pair: RedisPair) -> None:
    one, two, _, prefix = redis_pair
    s = session()
    await one.create(s, NOW)
    limiter = RedisRateLimiter(REDIS_URL, 5, 1.0, prefix=prefix + "rl:")
    first = await one.begin(s.chat_id, NOW, claimed=None, turn_id=None, go=True, limiter=limiter)
    assert first.lease is not None
    waiting = asyncio.create_task(two.begin(s.chat_id, NOW, claimed=None, turn_id=None, go=True, limiter=limiter))
    await asyncio.sleep(0.05)  # (two polls meanwhile; the save below is what it waits for)
    assert await one.save_history(s.chat_id, EXCHANGE, NOW + 0.1, lease=first.lease, expect=0,
                                  turn=TurnRecord("t-1", "d", "a"), release=True) is Saved.SAVED
    second = await waiting
    assert second.lease is not None and second.session is not None and second.session.version == 1
    await two.release(second.lease)
    await limiter.close()


def turn(role: str, text: str) -> dict[str, object]:
    return {"role": role, "parts": [{"text": text}]}


async def test_a_redis_turn_reads_the_history_unparsed_and_saves_only_its_exchange(
        redis_pair: RedisPair) -> None:
    one, _, raw, prefix = redis_pair
    s = session(history=[turn("user", "a"), turn("model", "b"), turn("user", "c"), turn("model", "d")])
    await one.create(s, NOW)
    limiter = RedisRateLimiter(REDIS_URL, 5, 1.0, prefix=prefix + "rl:")
    begun = await one.begin(s.chat_id, NOW, claimed=None, turn_id=None, go=True, limiter=limiter)
    assert begun.session is not None and begun.lease is not None
    stored = begun.session.history
    assert all(type(t) is orjson.Fragment for t in stored) and plain(stored) == s.history
    sent: list[object] = []
    real = one._save

    async def spy(**kwargs: object) -> object:
        sent.append(kwargs["args"])
        return await real(**kwargs)

    one._save = spy  # type: ignore[method-assign]
    new = [*stored[2:], turn("user", "e"), turn("model", "f")]  # the cap dropped the first exchange
    assert await one.save_history(s.chat_id, new, NOW + 1, lease=begun.lease, expect=0,
                                  turn=TurnRecord("t-1", "d", "f"), release=True) is Saved.SAVED
    args = sent[0]
    assert isinstance(args, list) and args[12:] == [2, orjson.dumps(turn("user", "e")),
                                                    orjson.dumps(turn("model", "f"))]  # keep 2, append 2
    assert [orjson.loads(t) for t in await raw.lrange(f"{prefix}h:{s.chat_id}", 0, -1)] == plain(new)
    loaded = await one.load(s.chat_id, NOW + 2)
    assert loaded is not None and loaded.history == plain(new) and loaded.version == 1
    await limiter.close()


async def test_a_history_that_is_not_the_stored_tail_replaces_the_list(redis_pair: RedisPair) -> None:
    one, _, _, prefix = redis_pair
    s = session(history=[turn("user", "a"), turn("model", "b")])
    await one.create(s, NOW)
    limiter = RedisRateLimiter(REDIS_URL, 5, 1.0, prefix=prefix + "rl:")
    begun = await one.begin(s.chat_id, NOW, claimed=None, turn_id=None, go=True, limiter=limiter)
    assert begun.session is not None and begun.lease is not None
    rewritten = [turn("user", "x"), *begun.session.history]  # the stored turns, but not as the list's tail
    assert await one.save_history(s.chat_id, rewritten, NOW + 1, lease=begun.lease, expect=0,
                                  turn=TurnRecord("t-1", "d", "b"), release=True) is Saved.SAVED
    loaded = await one.load(s.chat_id, NOW + 2)
    assert loaded is not None and loaded.history == [turn("user", "x"), turn("user", "a"), turn("model", "b")]
    await limiter.close()


async def test_a_chat_stored_by_an_older_gateway_is_read_and_moved_into_the_list(
        redis_pair: RedisPair) -> None:
    """Before the list, the whole history was a JSON field of the hash: such a chat keeps working."""
    one, _, raw, prefix = redis_pair
    s = session()
    await one.create(s, NOW)
    old = [turn("user", "a"), turn("model", "b")]
    await raw.hset(prefix + s.chat_id, "history", orjson.dumps(old).decode())
    limiter = RedisRateLimiter(REDIS_URL, 5, 1.0, prefix=prefix + "rl:")
    begun = await one.begin(s.chat_id, NOW, claimed=None, turn_id=None, go=True, limiter=limiter)
    assert begun.session is not None and begun.lease is not None and plain(begun.session.history) == old
    new = [*begun.session.history, turn("user", "c"), turn("model", "d")]
    assert await one.save_history(s.chat_id, new, NOW + 1, lease=begun.lease, expect=0,
                                  turn=TurnRecord("t-1", "d", "d"), release=True) is Saved.SAVED
    assert not await raw.hexists(prefix + s.chat_id, "history")
    loaded = await one.load(s.chat_id, NOW + 2)
    assert loaded is not None and loaded.history == plain(new)
    await limiter.close()


async def test_ending_a_chat_removes_its_history_list(redis_pair: RedisPair) -> None:
    one, _, raw, prefix = redis_pair
    s = session(history=list(EXCHANGE))
    await one.create(s, NOW)
    assert await raw.llen(f"{prefix}h:{s.chat_id}") == 2
    assert 0 < await raw.pttl(f"{prefix}h:{s.chat_id}") <= TTL * 1000  # expires with the chat
    assert await one.delete(s.chat_id, NOW + 1) is True
    assert not await raw.exists(f"{prefix}h:{s.chat_id}")
