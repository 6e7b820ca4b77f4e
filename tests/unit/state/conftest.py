"""Durable-store fixtures: a fresh SQLite file, or PostgreSQL tables under a prefix unique to the test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from cryptography.fernet import Fernet

from app.state.durable import DurableStore, KeyCipher

PG_URL = "postgresql+asyncpg://127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_factory(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator:
    """Build stores that share one database (as two processes would); tables are dropped afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    url = f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}" if request.param == "sqlite" else PG_URL
    made: list[DurableStore] = []

    def make(encryption_key: str | None = None) -> DurableStore:
        store = DurableStore(url, prefix=prefix, cipher=KeyCipher(encryption_key))
        made.append(store)
        return store

    yield make
    if made:
        async with made[0].engine.begin() as conn:
            await conn.run_sync(made[0].t.metadata.drop_all)
    for store in made:
        await store.close()


@pytest.fixture()
def fernet_key() -> str:
    return Fernet.generate_key().decode()
