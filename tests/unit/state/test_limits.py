"""TokenLimiter: admission (401/403) and limits (429 + retry_after), in memory and shared through Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from app.state.limits import TokenLimiter
from app.state.redis_link import RedisLink
from app.state.policy import Limits, TokenPolicy, TokenRegistry, hash_secret

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_800_000_030.0  # 30 s into a minute


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def token(**limits: int) -> TokenPolicy:
    return TokenPolicy(id=f"tok-{uuid.uuid4().hex[:10]}", name="t", limits=Limits(**limits))


async def test_admission_order() -> None:
    limiter = TokenLimiter(clock=Clock(T0))
    assert (await limiter.check(TokenPolicy("a", "a", enabled=False), "m")).status == 401
    expired = await limiter.check(TokenPolicy("a", "a", expires_at=T0 - 1), "m")
    assert (expired.status, expired.code) == (401, "token_expired")
    scoped = TokenPolicy("a", "a", models=("gemini-2.5-*",))
    refused = await limiter.check(scoped, "gemini-3-pro")
    assert (refused.status, refused.code) == (403, "model_not_allowed") and "gemini-3-pro" in refused.message
    assert (await limiter.check(scoped, "models/gemini-2.5-flash")).allowed


async def test_rpm_third_refused_until_the_minute_ends() -> None:
    clock = Clock(T0)
    limiter = TokenLimiter(clock=clock)
    tok = token(rpm=2)
    assert [(await limiter.check(tok, "m")).allowed for _ in range(2)] == [True, True]
    third = await limiter.check(tok, "m")
    assert (third.status, third.code, third.retry_after) == (429, "token_rpm_limit", 30.0)
    clock.now += 30
    assert (await limiter.check(tok, "m")).allowed


async def test_token_budget_and_concurrency() -> None:
    limiter = TokenLimiter(clock=Clock(T0))
    tok = token(tpm=100, concurrent=1)
    assert (await limiter.check(tok, "m")).allowed
    busy = await limiter.check(tok, "m")
    assert (busy.status, busy.code) == (429, "token_concurrent_limit")
    await limiter.record(tok, 150)   # frees the slot, spends the minute's tokens
    spent = await limiter.check(tok, "m")
    assert spent.code == "token_tpm_limit"


async def test_unlimited_tokens_count_nothing() -> None:
    limiter = TokenLimiter(clock=Clock(T0))
    tok = token()
    for _ in range(50):
        assert (await limiter.check(tok, "m")).allowed
    assert limiter._memory._values == {}


async def test_redis_limit_holds_across_two_limiters() -> None:
    clock = Clock(T0)
    a, b = TokenLimiter(REDIS_URL, clock=clock), TokenLimiter(REDIS_URL, clock=clock)
    try:
        tok = token(rpm=2, concurrent=5)
        results = [(await lim.check(tok, "m")).allowed for lim in (a, b, a, b)]
        assert results == [True, True, False, False]
        assert a.redis_errors == 0 and b.redis_errors == 0
        for lim in (a, b):
            await lim.record(tok, 0)
    finally:
        await a.close()
        await b.close()


async def test_redis_down_falls_back_to_memory() -> None:
    limiter = TokenLimiter("redis://127.0.0.1:1/0", clock=Clock(T0))
    try:
        tok = token(rpm=1)
        assert (await limiter.check(tok, "m")).allowed
        assert (await limiter.check(tok, "m")).status == 429
        assert limiter.redis_errors == 1  # the link is degraded: the second check does not try Redis
    finally:
        await limiter.close()


def test_registry_keeps_digests_only() -> None:
    reg = TokenRegistry(["sk-one"])
    assert reg.check("sk-one") and not reg.check("sk-two") and not reg.check(None)
    assert "sk-one" not in repr(reg._by_hash) and hash_secret("sk-one") in reg._by_hash
    reg.replace({hash_secret("sk-two"): TokenPolicy("x", "x", enabled=False)})
    assert not reg.check("sk-one") and not reg.check("sk-two") and reg.lookup("sk-two") is not None


@pytest.mark.parametrize("pattern,model,ok", [("gemini-*", "gemini-2.5-pro", True),
                                              ("*-flash", "gemini-2.5-pro", False)])
def test_allowlist_globs(pattern: str, model: str, ok: bool) -> None:
    assert TokenPolicy("x", "x", models=(pattern,)).allows_model(model) is ok


# -- Redis mode: one round trip per check, settlements behind it ----------------------------------------------

async def _eventually(check: Any, tries: int = 500) -> bool:
    for _ in range(tries):
        if await check():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_check_is_one_round_trip_and_settlements_ride_on_the_next() -> None:
    clock = Clock(T0)
    a = TokenLimiter(REDIS_URL, clock=clock, flush_interval=3600)  # no timed flush: only the next check
    try:
        tok = token(tpm=100)
        assert (await a.check(tok, "m")).allowed and a.round_trips == 1
        await a.record(tok, 150)  # no round trip here
        assert a.round_trips == 1
        spent = await a.check(tok, "m")  # carries the 150 tokens, then checks: refused by the shared counter
        assert spent.code == "token_tpm_limit" and a.round_trips == 2
    finally:
        await a.close()


async def test_a_freed_slot_reaches_the_other_replica_without_a_check() -> None:
    clock = Clock(T0)
    a, b = TokenLimiter(REDIS_URL, clock=clock), TokenLimiter(REDIS_URL, clock=clock)
    try:
        tok = token(concurrent=1)
        assert (await a.check(tok, "m")).allowed
        assert (await b.check(tok, "m")).code == "token_concurrent_limit"
        await a.record(tok, 0)  # returns at once; the release is written behind it

        async def b_admits() -> bool:
            decision = await b.check(tok, "m")
            if decision.allowed:
                await b.record(tok, 0)
            return decision.allowed

        assert await _eventually(b_admits)
    finally:
        await a.close()
        await b.close()


async def test_a_slot_freed_during_an_outage_is_given_back_to_redis_afterwards() -> None:
    clock = Clock(T0)
    link = RedisLink(REDIS_URL, retry_interval=0.02)
    a, b = TokenLimiter(clock=clock, link=link), TokenLimiter(REDIS_URL, clock=clock)
    try:
        tok = token(concurrent=1)
        assert (await a.check(tok, "m")).allowed  # the slot is held in Redis
        link.failed("pool", ConnectionError("refused"), "test")  # any store's failure: the link degrades
        await a.record(tok, 10)  # the release waits for Redis, not lost in local memory
        assert (await b.check(tok, "m")).code == "token_concurrent_limit"
        await asyncio.wait_for(link.wait_healthy(), 5)

        async def b_admits() -> bool:
            decision = await b.check(tok, "m")
            if decision.allowed:
                await b.record(tok, 0)
            return decision.allowed

        assert await _eventually(b_admits)
    finally:
        await a.close()
        await b.close()
        await link.close()
