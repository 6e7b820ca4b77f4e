"""Per-key weights, tiers and model lists in the durable store (schema v3): a v2 store gains the columns, the
values round-trip, reach another process's pool through the version poll, and go back to the settings."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, Table, select

from app.keys import KeyManager, MemoryPoolStore, key_id
from app.keys.key_policy import KeyPolicies, KeyPolicy
from app.state.durable import DurableState
from app.state.durable.schema import MIGRATIONS, migrate
from app.state.policy import TokenRegistry

KEY_A, KEY_B = "AQ.policy-key-a-0000000000", "AQ.policy-key-b-1111111111"
V3_COLUMNS = ("weight", "tier", "models", "exclude_models")


async def test_a_v2_store_gains_the_policy_columns(store_factory) -> None:
    store = store_factory()
    t = store.t
    v2_keys = Table(t.keys.name, MetaData(), *(Column(c.name, c.type, primary_key=c.primary_key)
                                              for c in t.keys.columns if c.name not in V3_COLUMNS))
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda c: t.metadata.create_all(c, tables=[t.meta, t.tokens, t.usage, t.errors]))
        await conn.run_sync(v2_keys.create)
        await conn.execute(t.meta.insert().values(name="schema", value=2))
        await conn.execute(t.meta.insert().values(name="version", value=1))
        await conn.execute(v2_keys.insert().values(id="k1", secret="s", enc=0, project=None, enabled=True,
                                                   removed=False, source="admin", created_at=1.0,
                                                   updated_at=1.0, kind="vertex"))
        assert await conn.run_sync(migrate, t) == len(MIGRATIONS) >= 3
        row = (await conn.execute(select(t.keys.c.id, t.keys.c.kind, t.keys.c.weight, t.keys.c.models))).one()
    assert tuple(row) == ("k1", "vertex", None, None)
    assert await store.key_policies() == {}


async def test_policies_round_trip_reach_another_process_and_clear(store_factory) -> None:
    one, two = store_factory(), store_factory()
    pool = KeyManager([], MemoryPoolStore(), policies=KeyPolicies(weights={key_id(KEY_B): 4}))
    other = DurableState(two, pool, TokenRegistry(), poll_interval=60, flush_interval=60)
    await one.start([KEY_A, KEY_B])
    await other.start([], [], {})
    try:
        a, b = key_id(KEY_A), key_id(KEY_B)
        await one.set_key_policy(a, weight=3, tier=2, models=("gemini-2.5-*",), exclude_models=())
        assert await one.key_policies() == {a: {"weight": 3, "tier": 2, "models": ("gemini-2.5-*",),
                                                "exclude_models": ()}}
        assert await other.refresh() is True
        assert pool.policies.of(a) == KeyPolicy(3, 2, ("gemini-2.5-*",), ())
        assert pool.policies.of(b) == KeyPolicy(weight=4)  # the settings still hold for B
        assert [r.cursor for r in pool._planner.plan("gemini-2.5-flash").rotations] == [
            "gemini-2.5-flash|1", "gemini-2.5-flash|2"]
        await one.set_key_policy(a, tier=None, models=None)  # back to the settings, field by field
        await other.refresh()
        assert pool.policies.of(a) == KeyPolicy(weight=3)
        await one.remove_key(a)  # the tombstone forgets the policy too
        assert a not in await one.key_policies()
    finally:
        await other.stop()
        await one.close()
