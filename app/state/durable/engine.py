"""Open the durable store's database: SQLite under ``DATA_DIR`` or PostgreSQL at ``DATABASE_URL``.

Both through SQLAlchemy Core 2 (async, with aiosqlite / asyncpg): one code path, one schema definition
(bench/durable_drivers.py measured the cost of the layer; README). Migrations run at start under a lock so
several workers or replicas may start at once: a PostgreSQL advisory lock, a file lock beside the SQLite file.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .schema import Tables, migrate

SQLITE_FILE = "gateway.db"


def database_url(data_dir: str, url: str | None) -> str | None:
    """The SQLAlchemy URL of the store, or None when it is switched off (no DATA_DIR, no DATABASE_URL)."""
    if url:
        for scheme in ("postgresql://", "postgres://", "postgresql+asyncpg://"):
            if url.startswith(scheme):
                return "postgresql+asyncpg://" + url[len(scheme):]
        if url.startswith("sqlite"):
            return url if "+aiosqlite" in url else url.replace("sqlite://", "sqlite+aiosqlite://", 1)
        raise ValueError("DATABASE_URL must be a postgresql:// (or sqlite://) URL")
    if not data_dir:
        return None
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{Path(data_dir).resolve() / SQLITE_FILE}"


def open_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the workers of one machine read while one writes; busy_timeout waits for the writer.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
    return engine


def _lock_id(prefix: str) -> int:
    return int.from_bytes(hashlib.sha256(f"gateway-migrate:{prefix}".encode()).digest()[:8], "big", signed=True)


@asynccontextmanager
async def locked(engine: AsyncEngine, prefix: str) -> AsyncIterator[AsyncConnection]:
    """A transaction that holds the store-wide start-up lock: one process at a time migrates and seeds."""
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_id(prefix)})
            yield conn
        return
    path = engine.url.database or ""
    lock_path = f"{path}.{prefix}lock" if path and path != ":memory:" else None
    fd = await asyncio.to_thread(_flock, lock_path) if lock_path else None
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock


async def run_migrations(conn: AsyncConnection, tables: Tables) -> int:
    """Bring the schema up to date inside ``locked``; safe when several processes start at the same moment."""
    return await conn.run_sync(migrate, tables)


def _flock(path: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd
