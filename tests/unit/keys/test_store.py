"""One behavioural suite for every PoolStore (memory and Redis), plus Redis's fallback when Redis fails.

The Redis variant needs a Redis at 127.0.0.1:6379 (CI starts one). When it is not reachable the tests FAIL:
a silently skipped Redis suite would let the shared-state path rot.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from app.keys import MemoryPoolStore, OutcomeKind, Pick, PoolStore, RedisPoolStore
from app.keys.store import MAX_CURSORS

REDIS_URL = "redis://127.0.0.1:6379/0"
IDS = ["k0", "k1", "k2"]
M = "gemini-2.5-flash"
M2 = "gemini-2.5-pro"
NOW = 1_000_000.0


async def _require_redis() -> aioredis.Redis:
    client = aioredis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the suite cannot run
        await client.aclose()
        pytest.fail(f"Redis is required at {REDIS_URL} for the shared store suite: {exc!r}")
    return client


class Stores:
    """Factory for stores that share one state (two replicas of the same deployment)."""

    def __init__(self, kind: str, prefix: str) -> None:
        self.kind = kind
        self.prefix = prefix
        self.made: list[Any] = []
        self._memory = MemoryPoolStore()

    def new(self) -> PoolStore:
        if self.kind == "memory":
            return self._memory  # one process: "another replica" is the same state
        store = RedisPoolStore(REDIS_URL, prefix=self.prefix)
        self.made.append(store)
        return store

    async def sync(self, store: PoolStore) -> None:
        """Let ``store`` catch up with the other replicas (Redis: a version poll, as its sync task does)."""
        if isinstance(store, RedisPoolStore):
            await store.refresh()


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    prefix = f"gg:test:{uuid.uuid4().hex}:"
    client = await _require_redis() if request.param == "redis" else None
    factory = Stores(request.param, prefix)
    try:
        yield factory
        for store in factory.made:
            # The fallback must not have hidden a Redis failure behind a passing test.
            assert store.redis_errors == 0 and not store.degraded
    finally:
        for store in factory.made:
            await store.close()
        if client is not None:
            keys = [k async for k in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


@pytest.fixture
def store(stores: Stores) -> PoolStore:
    return stores.new()


async def picks(store: PoolStore, n: int, model: str = M, exclude: Any = (), now: float = NOW) -> list[str | None]:
    return [(await store.pick(IDS, model, exclude, now)).key_id for _ in range(n)]


# -- selection ------------------------------------------------------------------------------------------------


async def test_round_robin_is_fair(store: PoolStore) -> None:
    assert await picks(store, 6) == ["k0", "k1", "k2", "k0", "k1", "k2"]


async def test_each_model_has_its_own_cursor(store: PoolStore) -> None:
    seen: dict[str, list[str | None]] = {M: [], M2: []}
    for _ in range(6):
        for model in (M, M2):
            seen[model].append((await store.pick(IDS, model, (), NOW)).key_id)
    assert seen[M] == seen[M2] == ["k0", "k1", "k2", "k0", "k1", "k2"]


async def test_concurrent_picks_are_atomic_and_balanced(store: PoolStore) -> None:
    results = await asyncio.gather(*(store.pick(IDS, M, (), NOW) for _ in range(30)))
    assert Counter(p.key_id for p in results) == {"k0": 10, "k1": 10, "k2": 10}


async def test_exclude_skips_keys(store: PoolStore) -> None:
    assert await picks(store, 4, exclude={"k1"}) == ["k0", "k2", "k0", "k2"]
    assert await store.pick(IDS, M, set(IDS), NOW) == Pick(None, None, False)


async def test_no_keys(store: PoolStore) -> None:
    assert await store.pick([], M, (), NOW) == Pick(None, None, False)
    assert await store.wait([], M, NOW) is None


async def test_cursor_continues_after_the_chosen_key(store: PoolStore) -> None:
    await store.cool("k1", M, NOW + 10, "rate_limited")
    assert await picks(store, 4) == ["k0", "k2", "k0", "k2"]


# -- cooldowns ------------------------------------------------------------------------------------------------


async def test_cooldown_is_per_model_and_expires(store: PoolStore) -> None:
    await store.cool("k0", M, NOW + 30, "rate_limited: per minute")
    assert "k0" not in await picks(store, 6)
    assert "k0" in await picks(store, 3, model=M2)
    later = await picks(store, 3, now=NOW + 30.001)
    assert sorted(later) == ["k0", "k1", "k2"]


async def test_all_cooling_reports_the_earliest_end(store: PoolStore) -> None:
    for kid, delay in zip(IDS, (40.0, 12.5, 90.0)):
        await store.cool(kid, M, NOW + delay, "rate_limited")
    picked = await store.pick(IDS, M, (), NOW)
    assert picked.key_id is None and not picked.all_disabled
    assert picked.wait == pytest.approx(12.5)
    # An excluded key's cooldown does not count: this request will not use it anyway.
    assert (await store.pick(IDS, M, {"k1"}, NOW)).wait == pytest.approx(40.0)


async def test_cool_never_shortens(store: PoolStore) -> None:
    await store.cool("k0", M, NOW + 3600, "quota_exhausted")
    await store.cool("k0", M, NOW + 5, "rate_limited")
    snap = await store.snapshot(["k0"], NOW)
    assert snap["k0"].cooldowns[M].until == pytest.approx(NOW + 3600)
    assert snap["k0"].cooldowns[M].reason == "quota_exhausted"
    await store.cool("k0", M, NOW + 7200, "later")
    assert (await store.snapshot(["k0"], NOW))["k0"].cooldowns[M].until == pytest.approx(NOW + 7200)


async def test_cool_many(store: PoolStore) -> None:
    await store.cool_many(["k0", "k2"], M, NOW + 60, "project-wide")
    assert await picks(store, 3) == ["k1", "k1", "k1"]


async def test_wait(store: PoolStore) -> None:
    assert await store.wait(IDS, M, NOW) == 0.0
    await store.cool_many(IDS, M, NOW + 20, "rl")
    await store.cool("k1", M, NOW + 50, "rl")
    assert await store.wait(IDS, M, NOW) == pytest.approx(20.0)
    await store.disable("k0", "bad", NOW)
    await store.disable("k2", "bad", NOW)
    assert await store.wait(IDS, M, NOW) == pytest.approx(50.0)  # disabled keys do not count
    await store.disable("k1", "bad", NOW)
    assert await store.wait(IDS, M, NOW) is None


# -- disable / enable -----------------------------------------------------------------------------------------


async def test_disable_and_enable(store: PoolStore) -> None:
    await store.disable("k1", "API_KEY_INVALID (HTTP 400)", NOW)
    assert "k1" not in await picks(store, 6)
    assert "k1" not in await picks(store, 6, model=M2)
    assert await store.disabled(IDS) == {"k1": "API_KEY_INVALID (HTTP 400)"}
    await store.enable("k1")
    assert await store.disabled(IDS) == {}
    assert "k1" in await picks(store, 3)


async def test_first_disable_reason_wins(store: PoolStore) -> None:
    await store.disable("k0", "first", NOW)
    await store.disable("k0", "second", NOW + 5)
    status = (await store.snapshot(["k0"], NOW))["k0"]
    assert (status.reason, status.disabled_at) == ("first", NOW)


async def test_all_disabled(store: PoolStore) -> None:
    await store.cool("k0", M, NOW + 100, "rl")
    for kid in IDS:
        await store.disable(kid, "API_KEY_INVALID", NOW)
    assert await store.pick(IDS, M, (), NOW) == Pick(None, None, True)


# -- failures and counters ------------------------------------------------------------------------------------


async def test_failures_count_and_reset(store: PoolStore) -> None:
    assert await store.failure("k0", "transient (HTTP 503): UNAVAILABLE", NOW) == 1
    assert await store.failure("k0", None, NOW) == 2
    await store.success("k0")
    assert await store.failure("k0", None, NOW) == 1
    await store.enable("k0")
    assert (await store.snapshot(["k0"], NOW))["k0"].failures == 0
    await store.success("k1")  # already zero: still fine
    assert (await store.snapshot(["k1"], NOW))["k1"].failures == 0


async def test_stream_streak_is_reset_only_by_a_finished_stream(store: PoolStore) -> None:
    assert await store.failure("k0", "transient (HTTP 0): reset", NOW, stream=True) == 1
    await store.success("k0")  # a non-stream success says nothing about the key's streams
    assert await store.failure("k0", None, NOW, stream=True) == 2
    assert await store.failure("k0", None, NOW) == 1  # the call streak is its own
    status = (await store.snapshot(["k0"], NOW))["k0"]
    assert (status.failures, status.stream_failures) == (1, 2)
    assert status.counters["transient"] == 3
    await store.success("k0", stream=True)
    status = (await store.snapshot(["k0"], NOW))["k0"]
    assert (status.failures, status.stream_failures) == (0, 0)
    await store.failure("k1", None, NOW, stream=True)
    await store.enable("k1")
    assert (await store.snapshot(["k1"], NOW))["k1"].stream_failures == 0


async def test_an_untallied_failure_moves_only_the_streak(store: PoolStore) -> None:
    await store.record("k0", OutcomeKind.TRANSIENT, "transient (HTTP 500): INTERNAL", NOW)
    assert await store.failure("k0", None, NOW, tally=False) == 1
    status = (await store.snapshot(["k0"], NOW))["k0"]
    assert status.failures == 1 and status.counters["transient"] == 1


async def test_snapshot(store: PoolStore) -> None:
    await store.success("k0")
    await store.success("k0")
    await store.failure("k0", "transient (HTTP 500): INTERNAL", NOW + 1)
    await store.record("k0", OutcomeKind.CLIENT_ERROR, "client_error (HTTP 404): NOT_FOUND", NOW + 2)
    await store.record("k1", OutcomeKind.RATE_LIMITED, None, NOW)
    await store.cool("k1", M, NOW + 30, "rate_limited: X")
    await store.cool("k1", M2, NOW - 1, "expired")
    await store.disable("k2", "3 consecutive transient failures", NOW)
    snap = await store.snapshot(IDS, NOW)
    assert set(snap) == set(IDS)
    k0, k1, k2 = snap["k0"], snap["k1"], snap["k2"]
    assert k0.counters == {"requests": 4, "ok": 2, "rate_limited": 0, "quota_exhausted": 0, "key_invalid": 0,
                           "client_error": 1, "transient": 1}
    assert k0.failures == 1 and not k0.disabled and k0.cooldowns == {}
    assert (k0.last_error, k0.last_error_at) == ("client_error (HTTP 404): NOT_FOUND", NOW + 2)
    assert k1.counters["rate_limited"] == 1 and k1.last_error is None
    assert list(k1.cooldowns) == [M]  # the expired one is not reported
    assert k1.cooldowns[M].reason == "rate_limited: X"
    assert k2.disabled and k2.reason == "3 consecutive transient failures" and k2.disabled_at == NOW


# -- replicas -------------------------------------------------------------------------------------------------


async def test_replicas_share_state(stores: Stores) -> None:
    a, b = stores.new(), stores.new()
    assert (await a.pick(IDS, M, (), NOW)).key_id == "k0"
    assert (await b.pick(IDS, M, (), NOW)).key_id in IDS  # Redis: each replica has its own cursor
    await a.cool("k2", M, NOW + 60, "rl")
    await a.disable("k0", "bad", NOW)
    await stores.sync(b)
    assert await picks(b, 3) == ["k1", "k1", "k1"]
    assert await b.failure("k1", None, NOW) == 1
    assert await a.failure("k1", None, NOW) == 2


# -- Redis: the local view --------------------------------------------------------------------------------------


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    client = await _require_redis()
    prefix = f"gg:test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _until(check: Any, tries: int = 300) -> bool:
    """Poll ``check()`` (bounded: ``tries`` × 10 ms) for a change pushed by another replica."""
    for _ in range(tries):
        if await check():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_changes_reach_another_replica_by_pubsub(redis_prefix: str) -> None:
    # Polling is off (an hour): only the published messages can update b's view.
    a = RedisPoolStore(REDIS_URL, prefix=redis_prefix, sync_interval=3600)
    b = RedisPoolStore(REDIS_URL, prefix=redis_prefix, sync_interval=3600)
    try:
        await a.pick(IDS, M, (), NOW)
        await b.pick(IDS, M, (), NOW)
        assert await _until(lambda: _true_after(b.reloads >= 2))  # b's task subscribed and loaded
        await a.disable("k0", "API_KEY_INVALID", NOW)
        await a.cool_many(["k1"], M, NOW + 60, "quota_exhausted")

        async def b_agrees() -> bool:
            return await b.disabled(IDS) == {"k0": "API_KEY_INVALID"} and await b.wait(["k1"], M, NOW) == 60.0

        assert await _until(b_agrees)
        assert await picks(b, 3) == ["k2", "k2", "k2"]
        await a.enable("k0")
        assert await _until(lambda: _disabled_is(b, {}))
        assert "k0" in await picks(b, 3)
        assert a.redis_errors == b.redis_errors == 0
    finally:
        await a.close()
        await b.close()


async def _true_after(value: bool) -> bool:
    return value


async def _disabled_is(store: RedisPoolStore, expected: dict[str, str]) -> bool:
    return await store.disabled(IDS) == expected


async def test_version_poll_catches_a_missed_change(redis_prefix: str) -> None:
    client = await _require_redis()
    store = RedisPoolStore(REDIS_URL, prefix=redis_prefix, sync_interval=3600)
    try:
        assert (await store.pick(IDS, M, (), NOW)).key_id == "k0"
        assert await store.refresh() is False  # nothing changed
        # A change whose message was lost (written without PUBLISH): only the version tells.
        await client.hset(redis_prefix + "dis", "k1", "lost message")
        await client.incr(redis_prefix + "ver")
        assert await store.refresh() is True
        assert await store.disabled(IDS) == {"k1": "lost message"}
        assert await picks(store, 2) == ["k2", "k0"]
    finally:
        await store.close()
        await client.aclose()


async def test_a_new_replica_starts_with_the_shared_state(redis_prefix: str) -> None:
    a = RedisPoolStore(REDIS_URL, prefix=redis_prefix)
    try:
        await a.disable("k0", "API_KEY_INVALID", NOW)
        await a.cool("k1", M, NOW + 30, "rate_limited")
    finally:
        await a.close()
    b = RedisPoolStore(REDIS_URL, prefix=redis_prefix)
    try:
        assert await picks(b, 3) == ["k2", "k2", "k2"]  # its first pick already agrees
        assert await picks(b, 1, model=M2) == ["k1"]
    finally:
        await b.close()


class _Counting:
    """Counts the commands a Redis client sends (scripts and plain commands alike)."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        self._execute = client.execute_command
        client.execute_command = self

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self._execute(*args, **kwargs)


async def test_the_hot_path_sends_nothing_to_redis(redis_prefix: str) -> None:
    store = RedisPoolStore(REDIS_URL, prefix=redis_prefix, sync_interval=3600, flush_interval=3600)
    try:
        ids = [f"k{i}" for i in range(2000)]
        await store.cool_many(ids[:1950], M, NOW + 3600, "quota_exhausted")
        await store.pick(ids, M, (), NOW)
        assert await _until(lambda: _true_after(store.reloads >= 2))
        counter = _Counting(store._redis)
        for _ in range(200):
            picked = await store.pick(ids, M, (), NOW)
            assert picked.key_id is not None and picked.key_id not in ids[:1950]
            await store.success(picked.key_id)
        assert counter.calls == 0
        # The batched successes reach Redis in one flush (here: the snapshot's).
        snap = await store.snapshot(ids[1950:], NOW)
        assert sum(s.counters["ok"] for s in snap.values()) == 200
    finally:
        await store.close()


async def test_a_failure_after_unflushed_successes_counts_from_zero(redis_prefix: str) -> None:
    store = RedisPoolStore(REDIS_URL, prefix=redis_prefix, flush_interval=3600)
    try:
        assert await store.failure("k0", None, NOW) == 1
        assert await store.failure("k0", None, NOW) == 2
        await store.success("k0")  # batched, not yet in Redis
        assert await store.failure("k0", None, NOW) == 1
    finally:
        await store.close()


# -- Redis fallback -------------------------------------------------------------------------------------------


async def test_redis_down_falls_back_to_memory(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisPoolStore("redis://:s3cret@127.0.0.1:1/0", prefix="gg:down:", timeout=0.2, retry_interval=60)
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.redis"):
            assert (await store.pick(IDS, M, (), NOW)).key_id == "k0"
            assert store.degraded and store.redis_errors == 1
            # Within the retry interval, Redis is not even tried: no error, no delay.
            assert (await store.pick(IDS, M, (), NOW)).key_id == "k1"
            await store.cool("k2", M, NOW + 10, "rl")
            await store.disable("k0", "bad", NOW)
            assert await store.failure("k1", None, NOW) == 1
            await store.success("k1")
            assert (await store.pick(IDS, M, (), NOW)).key_id == "k1"
            snap = await store.snapshot(IDS, NOW)
            assert snap["k0"].disabled and M in snap["k2"].cooldowns
            assert await store.wait(IDS, M, NOW) == 0.0
            assert await store.disabled(IDS) == {"k0": "bad"}
            assert store.redis_errors == 1
        warnings = [r for r in caplog.records if r.name == "gateway.redis"]
        assert len(warnings) == 1  # logged once per outage
        assert "s3cret" not in warnings[0].getMessage()
        assert await store.ping() is False
    finally:
        await store.close()


async def test_while_degraded_writes_skip_redis_and_the_link_keeps_probing() -> None:
    store = RedisPoolStore("redis://127.0.0.1:1/0", prefix="gg:down:", timeout=0.2, retry_interval=0)
    try:
        await store.disable("k0", "bad", NOW)
        assert store.degraded and store.redis_errors == 1
        for _ in range(3):  # the link is not healthy: no Redis attempt, no error, no wait
            await store.disable("k0", "bad", NOW)
        assert store.redis_errors == 1
        assert (await store.pick(IDS, M, (), NOW)).key_id == "k1"
        assert await _until(lambda: _true_after(store._link.probes >= 3))  # its own PINGs, never a request
        assert store.degraded
    finally:
        await store.close()


class _FlakyScript:
    """Wraps a registered script; raises a connection error while ``down`` is set."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.down = False
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.down:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await self.script(*args, **kwargs)


async def test_a_disable_missed_by_redis_is_replayed(redis_prefix: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    store = RedisPoolStore(REDIS_URL, prefix=redis_prefix, retry_interval=0, sync_interval=0.05)
    flaky = _FlakyScript(store._disable_script)
    store._disable_script = flaky  # type: ignore[assignment]
    other = RedisPoolStore(REDIS_URL, prefix=redis_prefix)
    try:
        await store.disable("k0", "API_KEY_INVALID", NOW)  # written to Redis and to the local view
        flaky.down = True
        with caplog.at_level(logging.WARNING, logger="gateway.redis"):
            await store.disable("k1", "API_KEY_INVALID", NOW)  # Redis missed it; the view has it
            assert store.degraded and store.redis_errors == 1
            assert await picks(store, 2) == ["k2", "k2"]
            flaky.down = False
            assert await _until(lambda: _true_after(not store.degraded))
        messages = [r.getMessage() for r in caplog.records if r.name == "gateway.redis"]
        assert len(messages) == 2 and "answers again" in messages[1]
        # Another replica (started after the outage) learns both from Redis.
        assert await other.disabled(IDS) == {"k0": "API_KEY_INVALID", "k1": "API_KEY_INVALID"}
        assert await store.ping() is True
    finally:
        await store.close()
        await other.close()


async def test_a_new_replicas_first_concurrent_picks_all_wait_for_its_load(stores: Stores) -> None:
    """Two workers of one gateway: the one that has not served yet gets a burst; no pick of the burst may
    come from its still empty view (it would hand out the key the other worker disabled)."""
    first = stores.new()
    await first.disable("k1", "API_KEY_INVALID (HTTP 400)", NOW)
    fresh = stores.new()
    chosen = await asyncio.gather(*(fresh.pick(IDS, M, (), NOW) for _ in range(9)))
    assert "k1" not in {p.key_id for p in chosen}


async def test_distinct_model_names_cannot_grow_the_memory_cursors_without_bound() -> None:
    # A client may name 100,000 bogus models: each pick makes a cursor, so the cursors are bounded; a real
    # model's rotation survives the flood (its cursor is forgotten at worst, starting over at the first key).
    store = MemoryPoolStore()
    assert await picks(store, 2) == ["k0", "k1"]
    for i in range(100_000):
        store.pick_now(IDS, f"bogus-{i}", (), NOW)
    assert len(store._cursors) <= MAX_CURSORS
    assert [p for p in await picks(store, 3)] in (["k2", "k0", "k1"], ["k0", "k1", "k2"])


class CountingIds(list):
    """A rotation that counts how many of its entries a pick reads."""

    reads = 0

    def __getitem__(self, index):  # type: ignore[override]
        self.reads += 1
        return super().__getitem__(index)


async def test_a_rotation_found_dry_is_not_walked_again_until_something_can_change() -> None:
    # Tier 1 all out of daily quota, tier 2 serving: every request asks tier 1 first. A 2,000-key tier walked
    # per request cost ~0.8 ms; the answer cannot change before the earliest cooldown ends or a key is
    # enabled, so it is remembered until then.
    store = MemoryPoolStore()
    ids = CountingIds(f"k{i}" for i in range(2000))
    store.cool_now([kid for kid in ids if kid not in ("k0", "k7")], M, NOW + 500, "quota_exhausted")
    store.cool_now(["k0"], M, NOW + 100, "quota_exhausted")
    await store.disable("k7", "invalid", NOW)  # disabled, not cooling: an enable makes it eligible at once
    ids.reads = 0
    first = store.pick_now(ids, M, (), NOW)
    assert first.key_id is None and first.wait == pytest.approx(100) and ids.reads == 2000
    ids.reads = 0
    again = store.pick_now(ids, M, (), NOW + 10)
    assert again.key_id is None and again.wait == pytest.approx(90) and not again.all_disabled
    assert ids.reads == 0
    assert store.pick_now(ids, M, {"k0"}, NOW + 10).wait == pytest.approx(490)  # exclusions: walked
    await store.enable("k7")  # an enable can make a key eligible at once: forgotten
    assert store.pick_now(ids, M, (), NOW + 10).key_id == "k7"
    await store.disable("k7", "invalid", NOW)
    assert store.pick_now(ids, M, (), NOW + 20).key_id is None
    other = CountingIds(ids)
    assert store.pick_now(other, M, (), NOW + 20).key_id is None and other.reads  # another plan's list
    store.load_disabled({"k7": ("invalid", NOW)})  # a replica's (or the bus's) reload: forgotten
    ids.reads = 0
    assert store.pick_now(ids, M, (), NOW + 30).key_id is None and ids.reads == 2000
    assert store.pick_now(ids, M, (), NOW + 100).key_id == "k0"  # the earliest end: walked again


async def test_a_rotation_of_disabled_keys_stays_dry_until_an_enable() -> None:
    store = MemoryPoolStore()
    for kid in IDS:
        store.disable_now(kid, "invalid", NOW)
    assert store.pick_now(IDS, M, (), NOW) == Pick(None, None, True)
    assert store.pick_now(IDS, M, (), NOW + 1e6) == Pick(None, None, True)
    store.enable_now("k1")
    assert store.pick_now(IDS, M, (), NOW + 1e6).key_id == "k1"


class _HeldReply:
    """Wraps a registered script: the script runs in Redis at once, its reply reaches the caller only when the
    test lets it (``release``). ``ran`` is set once Redis has run it."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.ran = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reply = await self.script(*args, **kwargs)
        self.ran.set()
        await self.release.wait()
        return reply


async def test_a_reload_does_not_undo_a_disable_written_while_it_was_in_flight(redis_prefix: str) -> None:
    """The load runs in Redis, then this replica disables a key (the script lands and answers), then the load's
    reply arrives: the view must keep the disable, not wait for its pub/sub message to bring it back."""
    store = RedisPoolStore(REDIS_URL, prefix=redis_prefix, sync_interval=3600)
    load = _HeldReply(store._load_script)
    store._load_script = load  # type: ignore[assignment]
    try:
        reload = asyncio.create_task(store.refresh(force=True))  # as the sync task does right after start
        await load.ran.wait()
        await store.disable("k1", "API_KEY_INVALID", NOW)
        load.release.set()
        assert await reload is True
        # The view itself, before any pub/sub message could repair it (no sync task runs here).
        assert await store._local.disabled(IDS) == {"k1": "API_KEY_INVALID"}
        assert store._writes == {}  # nothing stays logged once no reload is in flight
    finally:
        await store.close()


async def test_a_reload_does_not_undo_a_disable_still_in_flight(redis_prefix: str) -> None:
    store = RedisPoolStore(REDIS_URL, prefix=redis_prefix, sync_interval=3600)
    load = _HeldReply(store._load_script)
    store._load_script = load  # type: ignore[assignment]
    disable = _HeldReply(store._disable_script)
    store._disable_script = disable  # type: ignore[assignment]
    try:
        reload = asyncio.create_task(store.refresh(force=True))
        await load.ran.wait()
        writing = asyncio.create_task(store.disable("k2", "API_KEY_INVALID", NOW))
        await disable.ran.wait()  # landed after the load ran; its answer is not back yet
        load.release.set()
        await reload
        assert await store._local.disabled(IDS) == {"k2": "API_KEY_INVALID"}
        disable.release.set()
        await writing
        assert store._version >= 0  # the write landed after the load: its message follows, no reload needed
    finally:
        await store.close()


async def test_a_write_reapplied_over_a_load_that_held_it_reloads_at_the_next_poll(redis_prefix: str) -> None:
    """The disable lands, another replica enables the key, then a reload reads that: the view keeps this
    replica's disable (the safe side) until the disable's answer shows the load held it; then it reloads."""
    store = RedisPoolStore(REDIS_URL, prefix=redis_prefix, sync_interval=3600)
    other = RedisPoolStore(REDIS_URL, prefix=redis_prefix, sync_interval=3600)
    disable = _HeldReply(store._disable_script)
    store._disable_script = disable  # type: ignore[assignment]
    try:
        writing = asyncio.create_task(store.disable("k0", "API_KEY_INVALID", NOW))
        await disable.ran.wait()
        await other.enable("k0")  # an operator's enable elsewhere, after the disable
        assert await store.refresh(force=True) is True
        assert await store._local.disabled(IDS) == {"k0": "API_KEY_INVALID"}  # still in flight: kept
        disable.release.set()
        await writing
        assert await store.refresh() is True  # the poll reloads although the version did not move
        assert await store._local.disabled(IDS) == {}
    finally:
        await store.close()
        await other.close()
