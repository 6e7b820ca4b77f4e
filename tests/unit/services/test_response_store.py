"""The Responses store: memory bounds (count, bytes, TTL) and the Redis engine (a real Redis, as the sessions suites)."""

from __future__ import annotations

import pytest

from app.state.redis_link import RedisLink
from app.services.response_store import MemoryResponseStore, RedisResponseStore, StoreUnavailable
from tests.unit.sessions.redis_support import DEAD_URL, REDIS_URL, redis_prefix


def record(n: int, pad: int = 0) -> dict:
    return {"response": {"id": f"resp_{n}", "output": [], "pad": "x" * pad}, "history": []}


async def test_memory_round_trip_and_delete():
    store = MemoryResponseStore(ttl=60, max_count=10, max_bytes=10_000)
    assert await store.put("resp_1", record(1))
    assert (await store.get("resp_1"))["response"]["id"] == "resp_1"
    assert await store.delete("resp_1") is True
    assert await store.get("resp_1") is None and await store.delete("resp_1") is False


async def test_memory_count_bound_drops_least_recently_used():
    store = MemoryResponseStore(ttl=60, max_count=2, max_bytes=10_000)
    await store.put("a", record(1))
    await store.put("b", record(2))
    await store.get("a")  # a is now the most recent
    await store.put("c", record(3))
    assert await store.get("b") is None and await store.get("a") is not None and len(store) == 2


async def test_memory_byte_bound_and_oversized_record():
    store = MemoryResponseStore(ttl=60, max_count=100, max_bytes=2_000)
    assert await store.put("big", record(0, pad=5_000)) is False
    for n in range(5):
        await store.put(f"r{n}", record(n, pad=700))
    assert len(store) == 2 and await store.get("r4") is not None


async def test_memory_ttl_expires(monkeypatch):
    import app.services.response_store as module

    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    store = MemoryResponseStore(ttl=10, max_count=10, max_bytes=10_000)
    await store.put("r", record(1))
    now[0] += 11
    assert await store.get("r") is None and await store.delete("r") is False


async def test_redis_round_trip_with_prefix_and_cap():
    async with redis_prefix() as prefix:
        store = RedisResponseStore(RedisLink(REDIS_URL).client(decode=False), ttl=60, max_bytes=2_000, prefix=prefix)
        try:
            assert await store.put("resp_1", record(1))
            assert (await store.get("resp_1"))["response"]["id"] == "resp_1"
            assert await store.put("huge", record(2, pad=5_000)) is False
            assert await store.delete("resp_1") is True and await store.get("resp_1") is None
        finally:
            await store.close()


async def test_redis_down_is_store_unavailable():
    store = RedisResponseStore(RedisLink(DEAD_URL).client(decode=False), ttl=60, max_bytes=2_000)
    try:
        with pytest.raises(StoreUnavailable):
            await store.get("resp_1")
    finally:
        await store.close()
