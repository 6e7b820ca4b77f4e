"""Conversation affinity: hints from headers and bodies, bindings with a sliding expiry, hit/bind/rebind counts."""

from __future__ import annotations

from app.keys import MemoryHotMap
from app.keys.affinity import Affinity, affinity_hint, body_hint


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_hints_strongest_first_and_never_the_raw_value() -> None:
    both = affinity_hint({"x-session-id": "plain", "x-claude-code-session-id": "claude"})
    assert both == affinity_hint({"x-claude-code-session-id": "claude"})
    assert affinity_hint({"session_id": "codex"}) != affinity_hint({"x-session-id": "codex-other"})
    assert affinity_hint({}) is None
    hint = body_hint("cache-key", "someone")
    assert hint == body_hint("cache-key") and hint is not None and "cache-key" not in hint
    assert body_hint(None, "someone") != hint and body_hint(None, None) is None and body_hint("", 3) is None


async def test_bind_hit_rebind_and_expiry() -> None:
    clock = Clock()
    events: list[str] = []
    store = MemoryHotMap(clock)
    aff = Affinity(store, ttl=100.0, on_event=events.append, clock=clock)
    assert await aff.lookup("h") is None
    await aff.settle("h", None, "k1")
    binding = await aff.lookup("h")
    assert binding is not None and binding.key_id == "k1"
    await aff.settle("h", binding, "k1")
    await aff.settle("h", binding, "k2")  # the bound key failed: another served
    assert (await aff.lookup("h")).key_id == "k2"  # type: ignore[union-attr]
    assert events == ["bind", "hit", "rebind"] and aff.counts == {"hit": 1, "bind": 1, "rebind": 1}
    clock.now += 99.0
    assert await aff.lookup("h") is not None
    clock.now += 2.0
    assert await aff.lookup("h") is None


async def test_hits_refresh_the_binding_past_half_its_life() -> None:
    clock = Clock()
    aff = Affinity(MemoryHotMap(clock), ttl=100.0, clock=clock)
    await aff.settle("h", None, "k1")
    for _ in range(5):  # used every 60 s: never expires
        clock.now += 60.0
        binding = await aff.lookup("h")
        assert binding is not None
        await aff.settle("h", binding, "k1")


async def test_ttl_zero_turns_affinity_off() -> None:
    aff = Affinity(MemoryHotMap(), ttl=0)
    await aff.settle("h", None, "k1")
    assert await aff.lookup("h") is None and aff.counts["bind"] == 0
