"""Per-key routes in the durable store (schema v2): a v1 store gains the columns, proxies are sealed like the
keys, a change reaches another process's route table, and the settings view masks proxy credentials."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, Table, select

from app.config import Settings
from app.keys import KeyManager, MemoryPoolStore, key_id
from app.net.routes import Route, RouteTable
from app.routes.admin_api import masked_settings
from app.state.durable import DurableState
from app.state.durable.schema import MIGRATIONS, migrate
from app.state.policy import TokenRegistry

KEY_A, KEY_B = "AQ.route-key-a-0000000000", "AQ.route-key-b-1111111111"
PROXY = "socks5://user:pw-s3cret@10.1.2.3:1080"
V1_COLUMNS = ("id", "secret", "enc", "project", "enabled", "removed", "source", "created_at", "updated_at")


async def test_a_v1_store_gains_the_route_columns(store_factory) -> None:
    store = store_factory()
    t = store.t
    v1_keys = Table(t.keys.name, MetaData(), *(Column(c.name, c.type, primary_key=c.primary_key)
                                              for c in t.keys.columns if c.name in V1_COLUMNS))
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda c: t.metadata.create_all(c, tables=[t.meta, t.tokens, t.usage, t.errors]))
        await conn.run_sync(v1_keys.create)
        await conn.execute(t.meta.insert().values(name="schema", value=1))
        await conn.execute(t.meta.insert().values(name="version", value=1))
        await conn.execute(v1_keys.insert().values(id="k1", secret="s", enc=0, project=None, enabled=True,
                                                   removed=False, source="admin", created_at=1.0, updated_at=1.0))
        assert await conn.run_sync(migrate, t) == len(MIGRATIONS)
        row = (await conn.execute(select(t.keys.c.id, t.keys.c.proxy, t.keys.c.kind))).one()
    assert tuple(row) == ("k1", None, None)
    await store.start([KEY_A])  # already at the latest: nothing to do, and the seed works on the new columns
    await store.route_key(key_id(KEY_A), proxy=PROXY, kind="vertex")
    assert (await store.key_routes())[key_id(KEY_A)] == (PROXY, "vertex")


async def test_routes_sealed_and_shared_then_cleared(store_factory, fernet_key: str) -> None:
    one, two = store_factory(fernet_key), store_factory(fernet_key)
    routes = RouteTable(default_proxy="http://default:3128")
    other = DurableState(two, KeyManager([], MemoryPoolStore()), TokenRegistry(), routes=routes,
                         poll_interval=60, flush_interval=60)
    await one.start([KEY_A, KEY_B])
    await other.start([], [], {})
    try:
        kid = key_id(KEY_A)
        await one.route_key(kid, proxy=PROXY, kind="vertex")
        async with one.engine.connect() as conn:
            stored = (await conn.execute(select(one.t.keys.c.proxy, one.t.keys.c.proxy_enc)
                                         .where(one.t.keys.c.id == kid))).one()
        assert "pw-s3cret" not in stored.proxy and stored.proxy_enc == 1
        assert await other.refresh() is True
        assert routes.of(kid) == Route("vertex", PROXY)
        assert routes.of(key_id(KEY_B)) == Route("gemini", "http://default:3128")
        await one.route_key(kid, proxy="direct")
        await other.refresh()
        assert routes.of(kid) == Route("vertex", None)
        await one.route_key(kid, proxy=None, kind=None)  # back to the settings
        await other.refresh()
        assert routes.of(kid) == Route("gemini", "http://default:3128")
        await one.route_key(kid, proxy=PROXY)
        await one.remove_key(kid)  # the tombstone forgets the proxy and its credentials
        assert kid not in await one.key_routes()
    finally:
        await other.stop()
        await one.close()


def test_settings_view_masks_proxies() -> None:
    settings = Settings(_env_file=None, outbound_proxy="http://u:pw-s3cret@proxy:3128",
                        key_proxies={"AQ.raw-key-0123456789": PROXY}, key_kinds={"AQ.raw-key-0123456789": "vertex"})
    view = masked_settings(settings)
    assert "pw-s3cret" not in repr(view) and "AQ.raw-key" not in repr(view)
    assert view["outbound_proxy"] == "http://proxy:3128"
    assert view["key_proxies"] == {"entries": 1} and view["key_kinds"] == {"entries": 1}


async def test_proxies_resealed_when_the_encryption_key_rotates(store_factory, fernet_key: str) -> None:
    from cryptography.fernet import Fernet
    plain = store_factory(None)
    await plain.start([KEY_A])
    await plain.route_key(key_id(KEY_A), proxy=PROXY)
    new_key = Fernet.generate_key().decode()
    await store_factory(fernet_key).start([])          # plain -> sealed with fernet_key
    await store_factory(f"{new_key},{fernet_key}").start([])   # re-sealed with new_key
    only_new = store_factory(new_key)
    await only_new.start([])
    assert (await only_new.key_routes())[key_id(KEY_A)] == (PROXY, None)
