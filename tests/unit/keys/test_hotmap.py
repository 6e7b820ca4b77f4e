"""RedisHotMap: the local read cache (no round trip on a fresh hit, another replica's new value after the
cache time), write-behind bindings, and local memory while the link is degraded, resynced afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from app.keys import RedisHotMap
from app.state.redis_link import RedisLink

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"gg:test:{uuid.uuid4().hex}:"
    yield name
    client = aioredis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=name + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_a_fresh_cached_value_costs_no_round_trip(prefix: str) -> None:
    clock = Clock()
    a = RedisHotMap(REDIS_URL, prefix, cache_ttl=2.0, clock=clock)
    b = RedisHotMap(REDIS_URL, prefix, cache_ttl=2.0, clock=clock)
    try:
        await a.set("h", "k1", 60)
        assert await b.get_many(["h", "absent"]) == ["k1", None] and b.round_trips == 1
        assert await b.get_many(["h"]) == ["k1"] and b.round_trips == 1  # from the cache
        await a.set("h", "k2", 60)
        assert await b.get_many(["h"]) == ["k1"]  # stale within the cache time: the stated bound
        clock.now += 2.1
        assert await b.get_many(["h"]) == ["k2"] and b.round_trips == 2
        assert await b.get_many(["absent"]) == [None] and b.round_trips == 3  # an absent name is always asked
    finally:
        await a.close()
        await b.close()


async def test_write_behind_reaches_redis_after_the_call(prefix: str) -> None:
    a = RedisHotMap(REDIS_URL, prefix, write_behind=True)
    raw = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        await a.set("h", "k1", 60)
        assert a.round_trips == 0 and await a.get_many(["h"]) == ["k1"]
        for _ in range(300):
            if await raw.get(prefix + "h") == "k1":
                break
            await asyncio.sleep(0.01)
        assert await raw.get(prefix + "h") == "k1"
    finally:
        await a.close()
        await raw.aclose()


async def test_while_degraded_the_map_is_local_and_resyncs_afterwards(prefix: str) -> None:
    link = RedisLink(REDIS_URL, retry_interval=0.02)
    owners = RedisHotMap(REDIS_URL, prefix, link=link, name="owners")
    raw = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        link.failed("pool", RedisConnectionError("refused"), "test")
        await owners.set("files/a", "k1\tt", 60)  # Redis not asked: kept locally
        assert await owners.get_many(["files/a"]) == ["k1\tt"] and owners.round_trips == 0
        assert owners.redis_errors == 0
        await asyncio.wait_for(link.wait_healthy(), 5)
        assert await owners.get_many(["files/a"]) == ["k1\tt"]  # local wins over Redis's absence, and is sent
        for _ in range(300):
            if await raw.get(prefix + "files/a") == "k1\tt":
                break
            await asyncio.sleep(0.01)
        assert await raw.get(prefix + "files/a") == "k1\tt"
    finally:
        await owners.close()
        await link.close()
        await raw.aclose()
