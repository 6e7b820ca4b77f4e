"""The per-user send_message limit, memory and Redis, on a fake clock (``now`` is always passed in)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from app.sessions import MemoryRateLimiter, RateLimiter, RedisRateLimiter, window_for
from tests.unit.sessions.redis_support import DEAD_URL, REDIS_URL, redis_prefix

NOW = 1_750_000_000.0

Factory = Callable[[int, float], RateLimiter]


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    made: list[RedisRateLimiter] = []
    async with redis_prefix() as prefix:
        def factory(limit: int = 2, window: float = 1.0) -> RateLimiter:
            if request.param == "memory":
                return MemoryRateLimiter(limit, window)
            limiter = RedisRateLimiter(REDIS_URL, limit, window, prefix=prefix)
            made.append(limiter)
            return limiter

        try:
            yield factory
            assert all(limiter.redis_errors == 0 for limiter in made)
        finally:
            for limiter in made:
                await limiter.close()


@pytest.mark.parametrize(("rate", "expected"), [(2.0, (2, 1.0)), (1.0, (1, 1.0)), (10.0, (10, 1.0)),
                                                (2.4, (2, 1.0)), (0.5, (1, 2.0)), (0.1, (1, 10.0))])
def test_window_for(rate: float, expected: tuple[int, float]) -> None:
    limit, window = window_for(rate)
    assert (limit, pytest.approx(window)) == expected


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf")])
def test_window_for_refuses_nonsense(rate: float) -> None:
    with pytest.raises(ValueError):
        window_for(rate)


async def test_third_call_within_a_second_is_refused(make: Factory) -> None:
    limiter = make(2, 1.0)
    assert await limiter.acquire("alice", NOW) is None
    assert await limiter.acquire("alice", NOW + 0.1) is None
    wait = await limiter.acquire("alice", NOW + 0.3)
    assert wait == pytest.approx(0.7)


async def test_calls_at_the_same_instant_all_count(make: Factory) -> None:
    limiter = make(2, 1.0)
    results = [await limiter.acquire("alice", NOW) for _ in range(3)]
    assert results[:2] == [None, None] and results[2] == pytest.approx(1.0)


async def test_window_slides(make: Factory) -> None:
    limiter = make(2, 1.0)
    await limiter.acquire("alice", NOW)
    await limiter.acquire("alice", NOW + 0.5)
    assert await limiter.acquire("alice", NOW + 0.99) is not None
    assert await limiter.acquire("alice", NOW + 1.0) is None  # the first call left the window
    assert await limiter.acquire("alice", NOW + 1.2) == pytest.approx(0.3)  # NOW+0.5 leaves at NOW+1.5


async def test_refused_calls_do_not_consume_budget(make: Factory) -> None:
    limiter = make(2, 1.0)
    await limiter.acquire("alice", NOW)
    await limiter.acquire("alice", NOW)
    for i in range(10):
        assert await limiter.acquire("alice", NOW + 0.05 * (i + 1)) is not None
    assert await limiter.acquire("alice", NOW + 1.0) is None


async def test_users_have_their_own_budget(make: Factory) -> None:
    limiter = make(1, 1.0)
    assert await limiter.acquire("alice", NOW) is None
    assert await limiter.acquire("bob", NOW) is None
    assert await limiter.acquire("alice", NOW) is not None


async def test_replicas_share_one_budget_and_decide_atomically(make: Factory) -> None:
    one, two = make(2, 1.0), make(2, 1.0)
    if isinstance(one, MemoryRateLimiter):
        two = one  # one process: the "other replica" is the same state
    results = await asyncio.gather(*(lim.acquire("alice", NOW) for lim in (one, two, one, two, one)))
    assert sum(r is None for r in results) == 2


async def test_slow_rates(make: Factory) -> None:
    limiter = make(*window_for(0.5))
    assert await limiter.acquire("alice", NOW) is None
    assert await limiter.acquire("alice", NOW + 1.5) == pytest.approx(0.5)
    assert await limiter.acquire("alice", NOW + 2.0) is None


async def test_memory_sweep_forgets_idle_users() -> None:
    limiter = MemoryRateLimiter(2, 1.0)
    await limiter.acquire("alice", NOW)
    await limiter.acquire("bob", NOW + 0.9)
    await limiter.sweep(NOW + 1.5)
    assert set(limiter._calls) == {"bob"}


async def test_redis_outage_falls_back_to_a_local_limit(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisRateLimiter(DEAD_URL, 2, 1.0, timeout=0.2)
    try:
        results = [await limiter.acquire("alice", NOW) for _ in range(3)]
        assert results[:2] == [None, None] and results[2] is not None
        assert limiter.redis_errors == 1  # then local until retry_interval has passed: no timeout per call
        assert sum("rate_limit during acquire" in r.getMessage() for r in caplog.records) == 1
    finally:
        await limiter.close()
