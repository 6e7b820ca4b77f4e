"""Ownership records, the hot map under them (memory and Redis) and leasing a resource's owner key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from app.errors import OwnerCooling, OwnerDisabled
from app.keys import (
    KeyManager,
    MemoryHotMap,
    MemoryPoolStore,
    Outcome,
    OutcomeKind,
    OwnerUnavailable,
    Ownership,
    RedisHotMap,
    key_id,
    tenant_of,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
M = "gemini-2.5-flash"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def ownership(request: pytest.FixtureRequest) -> AsyncIterator[Ownership]:
    store = MemoryHotMap() if request.param == "memory" else RedisHotMap(REDIS_URL, f"gg:test:{uuid.uuid4().hex}:")
    own = Ownership(store)
    yield own
    if isinstance(store, RedisHotMap):
        assert store.redis_errors == 0
    await own.close()


async def test_record_lookup_forget(ownership: Ownership) -> None:
    tenant = tenant_of("sk-one")
    await ownership.record("files/a", "k1", tenant, 60)
    await ownership.record("cachedContents/b", "k2", "", 60)
    owners = await ownership.owners(["files/a", "cachedContents/b", "files/unknown"])
    assert owners["files/a"].key_id == "k1" and owners["files/a"].tenant == tenant
    assert owners["cachedContents/b"].key_id == "k2"
    assert "files/unknown" not in owners
    await ownership.forget("files/a")
    assert await ownership.owner("files/a") is None


async def test_entries_expire_with_the_resource() -> None:
    clock = Clock()
    own = Ownership(MemoryHotMap(clock))
    await own.record("files/a", "k1", "", 10)
    clock.now += 9.9
    assert await own.owner("files/a") is not None
    clock.now += 0.2
    assert await own.owner("files/a") is None


def test_tenants_see_only_their_own() -> None:
    from app.keys import Owner
    owner = Owner("k1", tenant_of("sk-one"))
    assert owner.visible_to(tenant_of("sk-one"))
    assert not owner.visible_to(tenant_of("sk-two"))
    assert owner.visible_to(tenant_of("sk-two"), admin=True)
    assert tenant_of("sk-one") != "sk-one" and tenant_of(None) == ""


async def test_redis_outage_falls_back_to_memory() -> None:
    store = RedisHotMap("redis://127.0.0.1:1/0", "gg:test:", timeout=0.2)
    await store.set("files/a", "k1\t", 60)
    assert await store.get_many(["files/a"]) == ["k1\t"]
    assert store.redis_errors >= 1
    await store.close()


async def test_acquire_owner_says_why_the_owner_cannot_serve() -> None:
    keys = ["key-one", "key-two"]
    clock = Clock()
    manager = KeyManager(keys, MemoryPoolStore(), clock=clock)
    one = key_id("key-one")
    assert (await manager.acquire_owner(one, M)).key_id == one
    await manager.report(manager.lease_for(one), M, Outcome(OutcomeKind.RATE_LIMITED, 429, 30.0, "PerMinute"))
    with pytest.raises(OwnerUnavailable) as cooling:
        await manager.acquire_owner(one, M)
    assert cooling.value.retry_after == 30.0 and one in cooling.value.message
    await manager.disable(one, "API_KEY_INVALID")
    with pytest.raises(OwnerUnavailable) as disabled:
        await manager.acquire_owner(one, M)
    assert isinstance(disabled.value, OwnerDisabled) and disabled.value.status == 503
    assert "API_KEY_INVALID" in disabled.value.message
    assert isinstance(cooling.value, OwnerCooling) and cooling.value.status == 429
    with pytest.raises(OwnerUnavailable, match="no longer in the pool"):
        await manager.acquire_owner("nope", M)
