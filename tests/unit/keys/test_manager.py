"""KeyManager: selection, pool actions per outcome class, NoKeyAvailable, admin operations; on both stores."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis

from app.errors import (AllKeysDisabled, ModelNotServed, NoKeysConfigured, PoolExhausted, PoolQuotaExhausted,
                        PoolRateLimited)
from app.keys import (
    OK_OUTCOME,
    KeyManager,
    MemoryPoolStore,
    NoKeyAvailable,
    Outcome,
    OutcomeKind,
    PoolOptions,
    PoolStore,
    RedisPoolStore,
    RequestAccount,
    SurgeDetector,
    UnknownKey,
    key_id,
)
from app.keys.key_policy import KeyPolicies

REDIS_URL = "redis://127.0.0.1:6379/0"
M = "gemini-2.5-flash"
M2 = "gemini-2.5-pro"
KEYS = [f"AIzaSyTEST{c * 29}" for c in "ABCD"]  # key-shaped, not real
IDS = [key_id(k) for k in KEYS]
START = dt.datetime(2025, 3, 9, 9, 0, tzinfo=dt.timezone.utc).timestamp()  # 01:00 PST, DST starts at 02:00

RL = Outcome(OutcomeKind.RATE_LIMITED, 429, 30.0, "GenerateRequestsPerMinutePerProjectPerModel-FreeTier")
RL_NO_DELAY = Outcome(OutcomeKind.RATE_LIMITED, 429, None, "RESOURCE_EXHAUSTED")
DAY = Outcome(OutcomeKind.QUOTA_EXHAUSTED, 429, 36.0, "GenerateRequestsPerDayPerProjectPerModel-FreeTier")
INVALID = Outcome(OutcomeKind.KEY_INVALID, 400, None, "API_KEY_INVALID")
TRANSIENT = Outcome(OutcomeKind.TRANSIENT, 500, None, "INTERNAL")
OVERLOADED = Outcome(OutcomeKind.TRANSIENT, 503, None, "UNAVAILABLE")
CLIENT = Outcome(OutcomeKind.CLIENT_ERROR, 404, None, "NOT_FOUND")


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[PoolStore]:
    if request.param == "memory":
        yield MemoryPoolStore()
        return
    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        await client.aclose()
        pytest.fail(f"Redis is required at {REDIS_URL}: {exc!r}")
    prefix = f"gg:test:{uuid.uuid4().hex}:"
    redis_store = RedisPoolStore(REDIS_URL, prefix=prefix)
    try:
        yield redis_store
        assert redis_store.redis_errors == 0
    finally:
        await redis_store.close()
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def manager(store: PoolStore, clock: Clock, keys: list[str] = KEYS, max_failures: int = 3,
            **kwargs: object) -> KeyManager:
    return KeyManager(keys, store, options=PoolOptions(max_failures=max_failures), clock=clock,
                      **kwargs)  # type: ignore[arg-type]


async def ids_of(km: KeyManager, n: int, model: str = M) -> list[str]:
    return [(await km.acquire(model)).key_id for _ in range(n)]


def assert_no_raw_key(text: str) -> None:
    for key in KEYS:
        assert key not in text
        assert key[4:14] not in text  # not even the distinctive middle


# -- selection ------------------------------------------------------------------------------------------------


async def test_round_robin_fairness(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    assert km.key_ids == IDS and km.has_keys() and len(km) == 4
    counts = Counter(await ids_of(km, 200))
    assert counts == {kid: 50 for kid in IDS}


async def test_lease_carries_the_key_but_does_not_print_it(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    lease = await km.acquire(M)
    assert lease.key == KEYS[0] and lease.key_id == IDS[0]
    assert_no_raw_key(repr(lease))
    assert await km.acquire(M) is not lease
    again = km.lease_for(IDS[0])
    assert again.key == KEYS[0] and again.key_id == IDS[0]
    assert_no_raw_key(repr(again))


async def test_exclude(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    tried = {IDS[0], IDS[1]}
    assert {(await km.acquire(M, tried)).key_id for _ in range(4)} == {IDS[2], IDS[3]}


async def test_duplicate_and_blank_keys_are_ignored(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock, keys=[KEYS[0], " ", KEYS[0], KEYS[1]])
    assert km.key_ids == IDS[:2]


# -- pool actions ---------------------------------------------------------------------------------------------


async def test_ok_resets_failures(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock, max_failures=3)
    lease = km.lease_for(IDS[0])
    for _ in range(2):
        await km.report(lease, M, TRANSIENT)
    await km.report(lease, M, OK_OUTCOME)
    for _ in range(2):
        await km.report(lease, M, TRANSIENT)
    snap = {e["id"]: e for e in await km.snapshot()}
    assert snap[IDS[0]]["state"] == "active" and snap[IDS[0]]["failures"] == 2
    assert snap[IDS[0]]["counters"]["ok"] == 1 and snap[IDS[0]]["counters"]["transient"] == 4


async def test_transient_failures_disable_at_max(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock, max_failures=3)
    lease = km.lease_for(IDS[1])
    await km.report(lease, M, TRANSIENT)
    await km.report(km.lease_for(IDS[0]), M, OK_OUTCOME)  # evidence: another key serves meanwhile
    await km.report(lease, M, TRANSIENT)
    assert await km.disabled_ids() == []
    await km.report(lease, M, Outcome(OutcomeKind.TRANSIENT, 0, None, "timeout"))
    assert await km.disabled_ids() == [IDS[1]]
    entry = next(e for e in await km.snapshot() if e["id"] == IDS[1])
    assert entry["state"] == "disabled"
    assert entry["reason"].startswith("3 consecutive transient failures")
    assert IDS[1] not in await ids_of(km, 8)


async def test_a_streak_disables_only_once_another_key_served(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock, max_failures=2)
    a, b, c = (km.lease_for(kid) for kid in IDS[:3])
    await km.report(b, M, OK_OUTCOME)  # before the streaks began: no evidence
    for _ in range(4):  # a slow spell: every key fails, nobody serves
        await km.report(a, M, TRANSIENT)
        await km.report(c, M, TRANSIENT)
    assert await km.disabled_ids() == []
    await km.report(c, M, OK_OUTCOME)  # c recovers: its own streak ends, and it is evidence against a
    await km.report(a, M, TRANSIENT)
    assert await km.disabled_ids() == [IDS[0]]
    await km.report(c, M, TRANSIENT)  # c's new streak has seen nobody else serve yet
    await km.report(c, M, TRANSIENT)
    assert await km.disabled_ids() == [IDS[0]]
    entry = next(e for e in await km.snapshot() if e["id"] == IDS[2])
    assert entry["failures"] == 2 and entry["state"] == "active"


async def test_a_confirmed_charge_needs_no_further_evidence(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock, max_failures=1)
    account = RequestAccount(M)
    first = await km.lease(account, deadline=float("inf"))
    await first.report(TRANSIENT)
    assert await km.disabled_ids() == []  # held in the request's account
    second = await km.lease(account, deadline=float("inf"))
    assert second.key_id != first.key_id
    await second.report(OK_OUTCOME)  # the same request succeeded elsewhere
    assert await km.disabled_ids() == [first.key_id]


async def test_rate_limited_cools_key_and_model_for_retry_after(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    await km.report(km.lease_for(IDS[0]), M, RL)
    assert IDS[0] not in await ids_of(km, 9)
    assert IDS[0] in await ids_of(km, 4, model=M2)  # other models unaffected
    entry = next(e for e in await km.snapshot() if e["id"] == IDS[0])
    assert entry["state"] == "cooling"
    assert entry["cooldowns"][M]["until"] == pytest.approx(START + 30)
    assert entry["cooldowns"][M]["reason"].startswith("rate_limited: GenerateRequestsPerMinute")
    clock.advance(30.01)
    assert IDS[0] in await ids_of(km, 4)
    assert next(e for e in await km.snapshot() if e["id"] == IDS[0])["state"] == "active"


async def test_rate_limited_backoff_without_retry_after(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    lease = km.lease_for(IDS[0])
    expected = [1, 2, 4, 8, 16, 32, 60, 60]
    for delay in expected:
        await km.report(lease, M, RL_NO_DELAY)
        entry = next(e for e in await km.snapshot() if e["id"] == IDS[0])
        assert entry["cooldowns"][M]["until"] == pytest.approx(clock.now + delay)
        clock.advance(delay + 0.01)
    await km.report(lease, M, OK_OUTCOME)  # the streak is per key+model and resets on success
    await km.report(lease, M, RL_NO_DELAY)
    entry = next(e for e in await km.snapshot() if e["id"] == IDS[0])
    assert entry["cooldowns"][M]["until"] == pytest.approx(clock.now + 1)


async def test_zero_retry_after_still_cools_a_second(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    await km.report(km.lease_for(IDS[0]), M, Outcome(OutcomeKind.RATE_LIMITED, 429, 0.0, "x"))
    entry = next(e for e in await km.snapshot() if e["id"] == IDS[0])
    assert entry["cooldowns"][M]["until"] == pytest.approx(START + 1)


async def test_quota_exhausted_cools_until_pacific_midnight(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    await km.report(km.lease_for(IDS[2]), M, DAY)
    midnight = dt.datetime(2025, 3, 10, 7, 0, tzinfo=dt.timezone.utc).timestamp()  # first PDT midnight
    entry = next(e for e in await km.snapshot() if e["id"] == IDS[2])
    assert entry["cooldowns"][M]["until"] == midnight
    clock.now = midnight - 1
    assert IDS[2] not in await ids_of(km, 8)
    clock.now = midnight
    assert IDS[2] in await ids_of(km, 4)


async def test_project_wide_cooling(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock, project_of={IDS[0]: "proj-a", IDS[1]: "proj-a", IDS[2]: "proj-b"})
    await km.report(km.lease_for(IDS[1]), M, RL)
    assert set(await ids_of(km, 6)) == {IDS[2], IDS[3]}
    await km.report(km.lease_for(IDS[2]), M2, DAY)
    assert set(await ids_of(km, 6, model=M2)) == {IDS[0], IDS[1], IDS[3]}
    snap = {e["id"]: e for e in await km.snapshot()}
    assert snap[IDS[0]]["project"] == "proj-a" and M in snap[IDS[0]]["cooldowns"]
    # Counted only on the key that answered.
    assert snap[IDS[1]]["counters"]["rate_limited"] == 1 and snap[IDS[0]]["counters"]["rate_limited"] == 0


async def test_key_invalid_disables_for_all_models(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    await km.report(km.lease_for(IDS[3]), M, INVALID)
    assert IDS[3] not in await ids_of(km, 8) + await ids_of(km, 8, model=M2)
    entry = next(e for e in await km.snapshot() if e["id"] == IDS[3])
    assert entry["state"] == "disabled" and entry["reason"] == "API_KEY_INVALID (HTTP 400)"
    assert entry["disabled_at"] == START
    await km.enable(IDS[3])
    assert IDS[3] in await ids_of(km, 4)


async def test_client_error_changes_nothing(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock, max_failures=1)
    for _ in range(5):
        await km.report(km.lease_for(IDS[0]), M, CLIENT)
    entry = next(e for e in await km.snapshot() if e["id"] == IDS[0])
    assert entry["state"] == "active" and entry["failures"] == 0
    assert entry["counters"]["client_error"] == 5
    assert entry["last_error"] == "client_error (HTTP 404): NOT_FOUND"


# -- no key available -----------------------------------------------------------------------------------------


async def test_no_keys_configured(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock, keys=[])
    assert not km.has_keys()
    with pytest.raises(NoKeyAvailable) as info:
        await km.acquire(M)
    assert isinstance(info.value, NoKeysConfigured) and info.value.retry_after is None
    assert info.value.status == 503 and "no API keys are configured" in info.value.message
    assert await km.wait_time(M) is None


async def test_all_disabled(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    for kid in IDS[:3]:
        await km.report(km.lease_for(kid), M, INVALID)
    await km.disable(IDS[3], "disabled by admin")
    with pytest.raises(NoKeyAvailable) as info:
        await km.acquire(M)
    exc = info.value
    assert isinstance(exc, AllKeysDisabled) and exc.status == 503 and exc.retry_after is None
    assert "all 4 API keys are disabled" in exc.message
    assert "3 × API_KEY_INVALID (HTTP 400)" in exc.message and "1 × disabled by admin" in exc.message
    assert_no_raw_key(exc.message)
    assert await km.wait_time(M) is None


async def test_all_cooling_gives_retry_after_rounded_up(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    for kid, delay in zip(IDS, (40.0, 12.2, 90.0, 33.0)):
        await km.report(km.lease_for(kid), M, Outcome(OutcomeKind.RATE_LIMITED, 429, delay, "rl"))
    with pytest.raises(NoKeyAvailable) as info:
        await km.acquire(M)
    exc = info.value
    assert isinstance(exc, PoolRateLimited) and exc.retry_after == 13.0 and exc.status == 429
    assert "cooling down" in exc.message and M in exc.message and "13 s" in exc.message
    assert_no_raw_key(exc.message)
    assert await km.wait_time(M) == pytest.approx(12.2)
    assert await km.wait_time(M2) == 0.0
    clock.advance(12.3)
    assert (await km.acquire(M)).key_id == IDS[1]


async def test_all_out_of_daily_quota_is_insufficient_quota(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    daily = Outcome(OutcomeKind.QUOTA_EXHAUSTED, 429, 20.0, "GenerateRequestsPerDayPerProjectPerModel-FreeTier")
    for kid in IDS:
        await km.report(km.lease_for(kid), M, daily)
    with pytest.raises(NoKeyAvailable) as info:
        await km.acquire(M)
    exc = info.value
    assert isinstance(exc, PoolQuotaExhausted) and exc.code == "insufficient_quota" and exc.status == 429
    assert exc.retry_after is not None and exc.retry_after > 60 and "daily quota" in exc.message


async def test_all_tried(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    await km.report(km.lease_for(IDS[0]), M, INVALID)
    with pytest.raises(NoKeyAvailable) as info:
        await km.acquire(M, set(IDS[1:]))
    exc = info.value
    assert isinstance(exc, PoolExhausted) and exc.retry_after is None
    assert "already tried" in exc.message and "3 tried" in exc.message
    assert_no_raw_key(exc.message)


# -- admin ----------------------------------------------------------------------------------------------------


async def test_snapshot_has_no_raw_key(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock, project_of={IDS[0]: "p"})
    await km.report(km.lease_for(IDS[0]), M, RL)
    await km.report(km.lease_for(IDS[1]), M, INVALID)
    await km.report(km.lease_for(IDS[2]), M, TRANSIENT)
    snap = await km.snapshot()
    assert [e["id"] for e in snap] == IDS
    assert [e["state"] for e in snap] == ["cooling", "disabled", "active", "active"]
    assert_no_raw_key(orjson.dumps(snap).decode())
    assert await km.summary() == {"total": 4, "active": 2, "cooling": 1, "disabled": 1}


async def test_add_and_remove_keys(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock, keys=KEYS[:2])
    new_id = km.add_key(KEYS[2], project="p")
    assert new_id == IDS[2] and km.key_ids == IDS[:3]
    assert km.add_key(KEYS[2]) == IDS[2] and len(km) == 3
    assert set(await ids_of(km, 3)) == set(IDS[:3])
    assert km.remove_key(IDS[0]) and not km.remove_key(IDS[0])
    assert set(await ids_of(km, 4)) == set(IDS[1:3])
    with pytest.raises(ValueError):
        km.add_key("  ")


async def test_unknown_ids_are_rejected(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    with pytest.raises(UnknownKey):
        await km.enable("nope")
    with pytest.raises(UnknownKey):
        await km.disable("nope")
    with pytest.raises(KeyError):
        km.lease_for("nope")


async def test_503_never_disables_a_key(store):
    manager = KeyManager(["ok-503-key-aaaaaaaa"], store, options=PoolOptions(max_failures=2))
    lease = await manager.acquire("gemini-2.5-flash")
    for _ in range(5):
        await manager.report(lease, "gemini-2.5-flash", OVERLOADED)
    snap = await manager.snapshot()
    assert snap[0]["state"] == "active" and snap[0]["failures"] == 0


async def test_surge_of_429s_pauses_the_pool(store):
    keys = [f"ok-surge-key-{i}-aaaaaaaa" for i in range(5)]
    now = [1_000_000.0]
    manager = KeyManager(keys, store, clock=lambda: now[0], surge=SurgeDetector(threshold=3, window=10.0))
    limited = Outcome(OutcomeKind.RATE_LIMITED, 429, 2.0, "GenerateRequestsPerMinutePerProjectPerModel")
    for _ in range(3):
        lease = await manager.acquire("gemini-2.5-flash")
        await manager.report(lease, "gemini-2.5-flash", limited)
    # Two keys were never tried, yet the pool backs off as a whole instead of spending them on certain 429s.
    with pytest.raises(NoKeyAvailable) as info:
        await manager.acquire("gemini-2.5-flash")
    assert info.value.retry_after is not None and "backing off" in info.value.message
    assert (await manager.acquire("gemini-2.5-pro")).key_id  # other models are not paused
    now[0] += 3.0
    assert (await manager.acquire("gemini-2.5-flash")).key_id not in {None}
    snap = await manager.snapshot()
    assert not any(entry["state"] == "disabled" for entry in snap)


# -- weights, tiers, model lists -----------------------------------------------------------------------------


def tuned(store: PoolStore, clock: Clock, **policies: dict) -> KeyManager:
    return manager(store, clock, policies=KeyPolicies(**policies))


async def test_weights_split_requests_smoothly(store: PoolStore, clock: Clock) -> None:
    km = tuned(store, clock, weights={IDS[0]: 3})
    picked = await ids_of(km, 600)
    assert Counter(picked) == {IDS[0]: 300, IDS[1]: 100, IDS[2]: 100, IDS[3]: 100}
    assert not any(picked[i] == picked[i + 1] == picked[i + 2] for i in range(len(picked) - 2))


async def test_a_lower_tier_serves_only_while_no_upper_tier_key_can(store: PoolStore, clock: Clock) -> None:
    km = tuned(store, clock, tiers={IDS[2]: 2, IDS[3]: 2})
    assert set(await ids_of(km, 8)) == {IDS[0], IDS[1]}
    for kid in IDS[:2]:
        await km.report(km.lease_for(kid), M, RL)  # tier 1 cools for M (30 s), not for M2
    assert Counter(await ids_of(km, 8)) == {IDS[2]: 4, IDS[3]: 4}
    assert set(await ids_of(km, 4, M2)) == {IDS[0], IDS[1]}
    with pytest.raises(PoolRateLimited):  # tier 2 tried, tier 1 cooling: a wait, not a tier-1 key
        await km.acquire(M, {IDS[2], IDS[3]})
    clock.advance(31)
    assert set(await ids_of(km, 8)) == {IDS[0], IDS[1]}  # back to tier 1 at once


async def test_tiers_answer_for_the_whole_pool_when_nothing_can_serve(store: PoolStore, clock: Clock) -> None:
    km = tuned(store, clock, tiers={IDS[2]: 2, IDS[3]: 3})
    for kid, delay in zip(IDS, (40.0, 50.0, 12.2, 90.0)):
        await km.report(km.lease_for(kid), M, Outcome(OutcomeKind.RATE_LIMITED, 429, delay, "rl"))
    with pytest.raises(PoolRateLimited) as info:
        await km.acquire(M)
    assert info.value.retry_after == 13.0  # the earliest cooldown of any tier
    for kid in IDS:
        await km.report(km.lease_for(kid), M, INVALID)
    with pytest.raises(AllKeysDisabled):
        await km.acquire(M)


async def test_a_key_is_never_sent_a_model_its_lists_exclude(store: PoolStore, clock: Clock) -> None:
    km = tuned(store, clock, models={IDS[0]: ["gemini-2.5-*"], IDS[1]: ["gemini-3-*"]},
               exclude_models={IDS[2]: ["*-pro"]}, tiers={IDS[3]: 2})
    assert set(await ids_of(km, 9, M)) == {IDS[0], IDS[2]}
    assert set(await ids_of(km, 9, M2)) == {IDS[0]}
    assert set(await ids_of(km, 6, "gemini-3-flash")) == {IDS[1], IDS[2]}
    # the last resort (every allowed key tried) is still an allowed key, never IDS[1] for M2
    account = RequestAccount(M2)
    assert (await km.lease(account, float("inf"))).key_id == IDS[0]
    assert (await km.lease(account, float("inf"))).key_id == IDS[3]  # tier 2
    assert (await km.lease(account, float("inf"))).key_id in (IDS[0], IDS[3])


async def test_no_key_may_serve_the_model_is_a_404_naming_it(store: PoolStore, clock: Clock) -> None:
    km = tuned(store, clock, models={kid: ["gemini-2.5-*"] for kid in IDS})
    with pytest.raises(ModelNotServed) as info:
        await km.lease(RequestAccount("gemini-3-pro-preview"), float("inf"))
    exc = info.value
    assert exc.status == 404 and exc.code == "model_not_found" and exc.param == "model"
    assert "'gemini-3-pro-preview'" in exc.message
    assert await km.wait_time("gemini-3-pro-preview") is None
    assert (await km.acquire("_files")).key_id == IDS[0]  # calls that name no model use any key


async def test_pins_win_over_tiers_and_bindings_over_weights_but_neither_over_lists(store: PoolStore,
                                                                                   clock: Clock) -> None:
    km = tuned(store, clock, tiers={IDS[3]: 2}, models={IDS[2]: ["gemini-2.5-pro"]}, weights={IDS[0]: 5})
    assert (await km.lease(RequestAccount(M, pinned=IDS[3]), float("inf"))).key_id == IDS[3]
    assert (await km.lease(RequestAccount(M, prefer=IDS[1]), float("inf"))).key_id == IDS[1]
    with pytest.raises(ModelNotServed) as info:
        await km.lease(RequestAccount(M, pinned=IDS[2]), float("inf"))
    assert IDS[2] in info.value.message and M in info.value.message
    moved = await km.lease(RequestAccount(M, prefer=IDS[2]), float("inf"))
    assert moved.key_id in (IDS[0], IDS[1])


async def test_policy_changes_take_effect_on_replace_keys(store: PoolStore, clock: Clock) -> None:
    km = manager(store, clock)
    assert set(await ids_of(km, 8)) == set(IDS)
    km.replace_keys([(k, None) for k in KEYS], {IDS[0]: {"tier": 2}, IDS[1]: {"exclude_models": (M,)}})
    assert set(await ids_of(km, 8)) == {IDS[2], IDS[3]}
    snap = {e["id"]: e for e in await km.snapshot()}
    assert snap[IDS[0]]["tier"] == 2 and snap[IDS[1]]["exclude_models"] == [M] and snap[IDS[2]]["weight"] == 1
    km.replace_keys([(k, None) for k in KEYS], {})
    assert set(await ids_of(km, 8)) == set(IDS)


async def test_a_conversation_bound_to_a_fallback_tier_goes_back_once_its_betters_can_serve(
        store: PoolStore, clock: Clock) -> None:
    # Paid keys (tier 2) back up free ones: a conversation that fell back while tier 1 cooled must not keep
    # spending the paid key for as long as it keeps talking (coding agents send a session id on every turn).
    km = tuned(store, clock, tiers={IDS[2]: 2, IDS[3]: 2})
    for kid in IDS[:2]:
        await km.report(km.lease_for(kid), M, RL)  # tier 1 cools for M (30 s)
    assert (await km.lease(RequestAccount(M, prefer=IDS[3]), float("inf"))).key_id == IDS[3]  # bound, kept
    clock.advance(31)
    back = await km.lease(RequestAccount(M, prefer=IDS[3]), float("inf"))
    assert back.key_id in (IDS[0], IDS[1])  # tier 1 can serve again: the conversation moves back
    assert (await km.lease(RequestAccount(M, prefer=IDS[0]), float("inf"))).key_id == IDS[0]
