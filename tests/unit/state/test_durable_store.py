"""DurableStore on SQLite and on the machine's PostgreSQL: keys, tokens, usage, errors, migrations."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.fernet import Fernet

from app.keys import Outcome, OutcomeKind, key_id
from app.state.durable import CipherError, NotFound, UsageBuffer
from app.state.policy import hash_secret

KEY_A = "AQ.alpha-key-0123456789abcdef"
KEY_B = "plain-beta-key-0123456789"


async def test_concurrent_migrations_agree(store_factory) -> None:
    stores = [store_factory() for _ in range(4)]
    await asyncio.gather(*(s.start([KEY_A]) for s in stores))
    assert [r["id"] for r in await stores[0].list_keys()] == [key_id(KEY_A)]
    assert await stores[0].version() == await stores[3].version()


async def test_add_many_dedupes_and_refuses_placeholders(store_factory) -> None:
    store = store_factory()
    await store.start([KEY_A])
    v0 = await store.version()
    result = await store.add_keys([KEY_B, " " + KEY_B + " ", KEY_A, "your-gemini-key-1", "with space"], "proj-x")
    assert result.added == [key_id(KEY_B)]
    assert result.existing == [key_id(KEY_A)]
    assert [r["index"] for r in result.refused] == [3, 4]
    assert "placeholder" in result.refused[0]["reason"]
    assert await store.version() == v0 + 1
    assert await store.pool_keys() == [(KEY_A, None), (KEY_B, "proj-x")]


async def test_remove_disable_label_and_tombstone(store_factory) -> None:
    store = store_factory()
    await store.start([KEY_A, KEY_B])
    await store.set_key_enabled(key_id(KEY_A), False)
    assert await store.pool_keys() == [(KEY_B, None)]
    await store.set_key_enabled(key_id(KEY_A), True)
    await store.label_key(key_id(KEY_A), "p1")
    await store.remove_key(key_id(KEY_B))
    assert await store.pool_keys() == [(KEY_A, "p1")]
    with pytest.raises(NotFound):
        await store.remove_key(key_id(KEY_B))
    # A restart with the same API_KEYS does not bring the removed key back; adding it again does.
    again = store_factory()
    await again.start([KEY_A, KEY_B])
    assert await again.pool_keys() == [(KEY_A, "p1")]
    assert (await again.add_keys([KEY_B])).added == [key_id(KEY_B)]


async def test_keys_encrypted_at_rest_and_rotation(store_factory, fernet_key: str) -> None:
    store = store_factory(fernet_key)
    await store.start([KEY_A])
    async with store.engine.connect() as conn:
        stored = (await conn.execute(store.t.keys.select())).one()
    assert KEY_A not in stored.secret and stored.enc == 1
    with pytest.raises(CipherError, match="ENCRYPTION_KEY is not set"):
        await store_factory(None).start([])
    with pytest.raises(CipherError, match="cannot be decrypted"):
        await store_factory(Fernet.generate_key().decode()).start([])
    new_key = Fernet.generate_key().decode()
    rotated = store_factory(f"{new_key},{fernet_key}")
    await rotated.start([])
    # After the restart with the new key first, the new key alone opens every stored key.
    only_new = store_factory(new_key)
    await only_new.start([])
    assert await only_new.pool_keys() == [(KEY_A, None)]


async def test_plain_keys_get_encrypted_when_a_key_is_set(store_factory, fernet_key: str) -> None:
    await store_factory(None).start([KEY_A])
    store = store_factory(fernet_key)
    await store.start([])
    async with store.engine.connect() as conn:
        assert (await conn.execute(store.t.keys.select())).one().enc == 1


async def test_tokens_hashed_seeded_and_editable(store_factory) -> None:
    store = store_factory()
    await store.start([], ["seed-token"])
    view, secret = await store.create_token("ci", models=["gemini-2.5-*"], limits={"rpm": 2})
    assert view["limits"]["rpm"] == 2 and "secret" not in view
    policies = await store.token_policies()
    assert hash_secret(secret) in policies and hash_secret("seed-token") in policies
    async with store.engine.connect() as conn:
        rows = (await conn.execute(store.t.tokens.select())).all()
    assert all(secret not in str(tuple(r)) for r in rows)
    policy = policies[hash_secret(secret)]
    assert policy.allows_model("gemini-2.5-flash") and not policy.allows_model("gemini-3-pro")
    edited = await store.update_token(view["id"], enabled=False, rpm=None, models=[])
    assert edited["enabled"] is False and edited["limits"]["rpm"] is None and edited["models"] == []
    await store.delete_token(view["id"])
    with pytest.raises(NotFound):
        await store.get_token(view["id"])


async def test_usage_flush_adds_up_and_groups_by_day(store_factory) -> None:
    store = store_factory()
    await store.start([])
    buf = UsageBuffer()
    t0 = 1_800_000_000.0  # a fixed instant: hour buckets are computed, never read from the clock
    buf.count_outcome("k1", "m", Outcome(OutcomeKind.OK, 200), t0)
    buf.count_outcome("k1", "m", Outcome(OutcomeKind.RATE_LIMITED, 429, reason="RATE_LIMIT"), t0)
    buf.count_call(key_id="k1", token_id="tok-1", model="m", status=200, counts=(10, 5, 3, 2), latency_ms=12.5,
                   now=t0)
    await store.flush_usage(*buf.drain())
    buf.count_outcome("k1", "m", Outcome(OutcomeKind.OK, 200), t0 + 3600)
    buf.count_outcome("k1", "m", Outcome(OutcomeKind.KEY_INVALID, 400, reason="API_KEY_INVALID"), t0)
    await store.flush_usage(*buf.drain())
    hours = await store.usage(kind="key", subject="k1")
    assert [h["requests"] for h in hours] == [1, 3]
    assert hours[1]["successes"] == 1 and hours[1]["rate_limited"] == 1 and hours[1]["key_invalid"] == 1
    assert hours[1]["input_tokens"] == 10 and hours[1]["thinking_tokens"] == 3 and hours[1]["latency_ms_sum"] == 12
    days = await store.usage(kind="key", period="day")
    assert sum(d["requests"] for d in days) == 4
    tokens = await store.usage(kind="token")
    assert tokens[0]["token"] == "tok-1" and tokens[0]["requests"] == 1 and tokens[0]["output_tokens"] == 5
    errors = await store.errors(key_id="k1")
    assert [e["class"] for e in errors] == ["key_invalid", "rate_limited"]
    page = await store.errors(before=errors[0]["id"], limit=1)
    assert [e["id"] for e in page] == [errors[1]["id"]]


async def test_prune_drops_old_rows(store_factory) -> None:
    store = store_factory()
    await store.start([])
    buf = UsageBuffer()
    buf.count_outcome("k1", "m", Outcome(OutcomeKind.TRANSIENT, 500), 1000.0)
    await store.flush_usage(*buf.drain())
    await store.prune(1, 1)
    assert await store.usage() == [] and await store.errors() == []


def test_buffer_bounds_client_chosen_model_names(monkeypatch) -> None:
    from app.state.durable import usage as usage_mod
    monkeypatch.setattr(usage_mod, "MAX_ROWS_BUFFERED", 3)
    buf = UsageBuffer()
    ok = Outcome(OutcomeKind.OK, 200)
    for i in range(10):
        buf.count_outcome("k1", f"model-{i}", ok, 0.0)
    buf.count_outcome("k2", "m" * 500, ok, 0.0)
    models = sorted(m for (_, _, _, m) in buf.rows)
    assert len(buf.rows) == 5 and "(other)" in models and all(len(m) <= 128 for m in models)
    assert sum(r[0] for r in buf.rows.values()) == 11


def test_invented_model_names_add_no_rows() -> None:
    """A flood of made-up model names (each answered 404 by Google) folds into one row; a model that has served
    keeps its own rows, its client errors included."""
    buf = UsageBuffer()
    not_found = Outcome(OutcomeKind.CLIENT_ERROR, 404, reason="NOT_FOUND")
    buf.count_outcome("k1", "gemini-2.5-flash", Outcome(OutcomeKind.OK, 200), 0.0)
    for i in range(1000):
        buf.count_outcome("k1", f"made-up-{i}", not_found, 0.0)
        buf.count_call(key_id="k1", token_id="tok-1", model=f"made-up-{i}", status=404, counts=(0, 0, 0, 0),
                       latency_ms=1.0, now=0.0)
    buf.count_outcome("k1", "gemini-2.5-flash", Outcome(OutcomeKind.CLIENT_ERROR, 400, reason="INVALID_ARGUMENT"), 0.0)
    buf.count_outcome("k1", "gemini-new", Outcome(OutcomeKind.RATE_LIMITED, 429, reason="RATE_LIMIT"), 0.0)
    models = {m for (_, _, _, m) in buf.rows}
    assert models == {"gemini-2.5-flash", "(other)", "gemini-new"}
    assert buf.rows[(0, "key", "k1", "(other)")][0] == 1000
    assert buf.rows[(0, "token", "tok-1", "(other)")][0] == 1000
    assert buf.rows[(0, "key", "k1", "gemini-2.5-flash")][0] == 2
    assert {e.model for e in buf.errors} == {"(other)", "gemini-2.5-flash", "gemini-new"}
