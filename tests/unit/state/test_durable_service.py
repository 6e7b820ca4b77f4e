"""DurableState: a change made through one process's store reaches another's pool and token registry; the
usage tap counts calls against the caller's token; KeyManager.replace_keys keeps leases of keys that stay."""

from __future__ import annotations

from app.keys import KeyManager, MemoryPoolStore, Outcome, OutcomeKind, key_id
from app.observability.events import Interaction, NullSink
from app.state.durable import CURRENT_CALL, CallTag, DurableState
from app.state.policy import TokenRegistry, hash_secret

KEY_A, KEY_B = "AQ.first-key-000000000000", "AQ.second-key-11111111111"


def state(store) -> DurableState:
    return DurableState(store, KeyManager([], MemoryPoolStore()), TokenRegistry(), poll_interval=60,
                        flush_interval=60)


async def test_changes_reach_the_other_process(store_factory) -> None:
    one, two = state(store_factory()), state(store_factory())
    await one.start([KEY_A], ["seed-token"], {})
    await two.start([KEY_A], ["seed-token"], {})
    try:
        lease_a = two.keys.lease_for(key_id(KEY_A))
        await one.store.add_keys([KEY_B], "proj")
        _, secret = await one.store.create_token("ci")
        assert await two.refresh() is True and await two.refresh() is False
        assert two.keys.key_ids == [key_id(KEY_A), key_id(KEY_B)]
        assert two.keys.lease_for(key_id(KEY_A)).key == lease_a.key == KEY_A  # untouched key kept
        assert two.registry.check(secret) and two.registry.check("seed-token")
        await one.store.set_key_enabled(key_id(KEY_A), False)
        await two.refresh()
        assert two.keys.key_ids == [key_id(KEY_B)]
        assert (await two.keys.snapshot())[0]["project"] == "proj"
    finally:
        await one.stop()
        await two.stop()


async def test_usage_tap_counts_the_callers_token(store_factory) -> None:
    durable = state(store_factory())
    await durable.start([KEY_A], [], {})
    try:
        tap = durable.tap(NullSink())
        tag = CallTag("tok-1")
        CURRENT_CALL.set(tag)
        now = 1_800_000_000.0  # fixed instants: the latency is computed, never measured
        durable.buffer.count_outcome(key_id(KEY_A), "gemini-2.5-flash", Outcome(OutcomeKind.OK, 200), now)
        tap.publish(Interaction(surface="openai", model="gemini-2.5-flash", request={}, started=now - 0.5,
                                finished=now, status=200, key_id=key_id(KEY_A),
                                response={"usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3,
                                                            "thoughtsTokenCount": 2}}))
        assert tag.tokens == 12
        await durable.flush()
        rows = await durable.store.usage(kind="token")
        assert (rows[0]["token"], rows[0]["requests"], rows[0]["input_tokens"], rows[0]["latency_ms_sum"]) == (
            "tok-1", 1, 7, 500)
        key_rows = await durable.store.usage(kind="key")
        assert key_rows[0]["requests"] == 1 and key_rows[0]["thinking_tokens"] == 2
    finally:
        CURRENT_CALL.set(None)
        await durable.stop()


def test_registry_seeded_ids_are_stable() -> None:
    assert TokenRegistry(["a"]).lookup("a").id == TokenRegistry(["a"]).lookup("a").id
    assert hash_secret("a") != hash_secret("b")
