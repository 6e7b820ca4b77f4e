"""Several workers' pool stores over one bus: a disable or a long cooldown on one is honoured by all at their
next pick; short cooldowns stay where they were seen."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
from pathlib import Path

import pytest

from app.keys.worker_store import SHARED_COOLDOWN, WorkerPoolStore, compact
from app.state.worker_bus import WorkerBus

IDS = ["k0", "k1", "k2"]
M = "gemini-2.5-flash"
NOW = 1_000_000.0


class Workers:
    def __init__(self, tmp_path: Path, **bus: object) -> None:
        self.path = WorkerBus.create(str(tmp_path))
        self.bus = bus

    def new(self) -> WorkerPoolStore:
        bus = WorkerBus(self.path, compact=compact, **self.bus)  # type: ignore[arg-type]
        return WorkerPoolStore(bus, clock=lambda: NOW)


async def picks(store: WorkerPoolStore, n: int = 6) -> list[str | None]:
    return [(await store.pick(IDS, M, (), NOW)).key_id for _ in range(n)]


@pytest.fixture()
def workers(tmp_path: Path) -> Workers:
    return Workers(tmp_path)


async def test_a_key_disabled_by_one_worker_is_never_picked_by_another(workers: Workers) -> None:
    a, b = workers.new(), workers.new()
    assert set(await picks(b)) == set(IDS)  # b has picked k1 before: its view is loaded
    await a.disable("k1", "API_KEY_INVALID (HTTP 400)", NOW)
    assert "k1" not in await picks(b)
    assert (await b.disabled(IDS)) == {"k1": "API_KEY_INVALID (HTTP 400)"}


async def test_an_enable_on_one_worker_brings_the_key_back_on_all(workers: Workers) -> None:
    a, b = workers.new(), workers.new()
    await a.disable("k2", "disabled by admin", NOW)
    await b.enable("k2")
    assert "k2" in await picks(a)
    assert (await a.disabled(IDS)) == {}


async def test_a_disabled_key_keeps_its_first_reason_and_publishes_once(workers: Workers) -> None:
    a, b = workers.new(), workers.new()
    await a.disable("k0", "first", NOW)
    await b.disable("k0", "second", NOW)
    snap = await b.snapshot(IDS, NOW)
    assert snap["k0"].disabled and snap["k0"].reason == "first" and snap["k0"].disabled_at == NOW
    assert a.bus_stats()["published"] + b.bus_stats()["published"] == 1


async def test_long_cooldowns_are_shared_short_ones_stay_local(workers: Workers) -> None:
    a, b = workers.new(), workers.new()
    await a.cool_many(["k0", "k1"], M, NOW + SHARED_COOLDOWN + 3600, "quota_exhausted: daily")
    await a.cool("k2", M, NOW + 30, "rate_limited: per minute")
    assert await picks(b) == ["k2"] * 6
    assert await picks(a) == [None] * 6
    assert await b.wait(IDS, M, NOW) == 0.0


async def test_a_worker_started_later_replays_what_the_others_learned(workers: Workers) -> None:
    a = workers.new()
    await a.disable("k0", "API_KEY_INVALID (HTTP 400)", NOW)
    await a.cool("k1", M, NOW + 86_000, "quota_exhausted: daily")
    late = workers.new()
    assert await picks(late) == ["k2"] * 6


async def test_state_survives_compaction(tmp_path: Path) -> None:
    workers = Workers(tmp_path, limit=256)
    a, b = workers.new(), workers.new()
    for _ in range(20):  # toggling fills the log past its limit, several times
        await a.disable("k0", "disabled by admin", NOW)
        await a.enable("k0")
    await a.disable("k1", "API_KEY_INVALID (HTTP 400)", NOW)
    assert a.bus_stats()["compactions"] >= 1
    assert set(await picks(b)) == {"k0", "k2"}
    assert set(await picks(workers.new())) == {"k0", "k2"}


def test_compact_keeps_only_what_still_matters() -> None:
    records = [["d", "k0", "r0", 1.0], ["d", "k1", "r1", 2.0], ["e", "k0"], ["d", "k1", "later", 3.0],
               ["c", M, NOW - 1, "ended", ["k2"]], ["c", M, NOW + 10, "short", ["k2"]],
               ["c", M, NOW + 99, "long", ["k2", "k0"]]]
    assert compact(records, NOW) == [["d", "k1", "r1", 2.0], ["c", M, NOW + 99, "long", ["k2"]],
                                     ["c", M, NOW + 99, "long", ["k0"]]]


def _worker_on_a_full_disk(path: str, room: int, out: "multiprocessing.Queue[object]") -> None:
    """A worker whose bus file can grow by ``room`` bytes only (RLIMIT_FSIZE: pwrite writes what fits, then
    fails with EFBIG, as on a full disk); it disables k0 and reports what it picks then."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + room, resource.RLIM_INFINITY))
    store = WorkerPoolStore(WorkerBus(path, compact=compact), clock=lambda: NOW)

    async def run() -> list[str | None]:
        await store.disable("k0", "API_KEY_INVALID (HTTP 400)", NOW)
        await store.cool_many(["k1"], M, NOW + 2 * SHARED_COOLDOWN, "quota_exhausted: per day")
        return await picks(store)

    try:
        out.put(asyncio.run(run()))
    except BaseException as exc:  # noqa: BLE001 - the parent asserts on it
        out.put(f"{type(exc).__name__}: {exc}")
    out.put(store.bus_stats())


def test_a_worker_whose_bus_cannot_be_written_keeps_what_it_learned_and_tears_nothing(workers: Workers) -> None:
    other = workers.new()
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[object] = ctx.Queue()
    proc = ctx.Process(target=_worker_on_a_full_disk, args=(workers.path, 20, out))  # half a disable record
    proc.start()
    picked, stats = out.get(timeout=60), out.get(timeout=60)
    proc.join(30)
    # No exception on the request path, and the worker honours its own disable and daily cooldown.
    assert picked == ["k2"] * 6, picked
    assert isinstance(stats, dict) and stats["write_failed"] == 2 and stats["published"] == 0
    # The other worker never reads half a record: the header did not move, its picks go on.
    assert not other._bus.moved()
    assert set(asyncio.run(picks(other))) == {"k0", "k1", "k2"}
    # The next record that fits is whole, and the torn bytes after the old end are overwritten.
    asyncio.run(workers.new().disable("k2", "disabled by admin", NOW))
    assert set(asyncio.run(picks(other))) == {"k0", "k1"} and other._bus.stats["torn"] == 0
