"""The drop-oldest channel: never blocks the producer, keeps the newest, counts what it evicted."""

from __future__ import annotations

import asyncio

import pytest

from app.observability.channel import DropOldestChannel


def test_drop_oldest_when_full() -> None:
    ch: DropOldestChannel[int] = DropOldestChannel(3)
    for i in range(10):
        ch.put(i)
    assert len(ch) == 3
    assert ch.dropped == 7
    assert ch.take_all() == [7, 8, 9]
    assert len(ch) == 0


def test_rejects_zero_size() -> None:
    with pytest.raises(ValueError):
        DropOldestChannel(0)


async def test_get_batch_waits_then_takes_up_to_limit() -> None:
    ch: DropOldestChannel[int] = DropOldestChannel(100)
    getter = asyncio.create_task(ch.get_batch(4))
    await asyncio.sleep(0.01)
    assert not getter.done()
    for i in range(6):
        ch.put(i)
    assert await asyncio.wait_for(getter, 1) == [0, 1, 2, 3]
    assert await ch.get_batch(4) == [4, 5]


async def test_several_consumers_share_the_items() -> None:
    ch: DropOldestChannel[int] = DropOldestChannel(100)
    got: list[int] = []

    async def consume() -> None:
        while True:
            got.extend(await ch.get_batch(1))

    tasks = [asyncio.create_task(consume()) for _ in range(3)]
    await asyncio.sleep(0)
    for i in range(20):
        ch.put(i)
    for _ in range(50):
        if len(got) == 20:
            break
        await asyncio.sleep(0.01)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(got) == list(range(20))


def test_byte_budget_evicts_oldest_but_keeps_the_newest() -> None:
    ch: DropOldestChannel[str] = DropOldestChannel(100, max_bytes=1000)
    for name in "abcd":
        ch.put(name, 300)
    assert ch.take_all() == ["b", "c", "d"]
    assert ch.dropped == 1 and ch.queued_bytes == 0
    ch.put("huge", 5000)  # larger than the whole budget: kept alone rather than lost
    ch.put("next", 10)
    assert ch.take_all() == ["next"]
    assert ch.dropped == 2


async def test_byte_accounting_follows_get_batch() -> None:
    ch: DropOldestChannel[int] = DropOldestChannel(10, max_bytes=100)
    ch.put(1, 40)
    ch.put(2, 40)
    assert await ch.get_batch(1) == [1]
    assert ch.queued_bytes == 40
    ch.put(3, 40)
    assert len(ch) == 2 and ch.dropped == 0
