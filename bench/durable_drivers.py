"""Measure the durable store's candidate libraries on the store's real work (issue 16).

Two operations matter: the usage flush (an upsert of a batch of hourly rows, off the request path) and the
version poll (one small SELECT every 2 s per worker). Candidates: SQLAlchemy Core 2 async (one code path for
SQLite and PostgreSQL) against the bare drivers (aiosqlite, asyncpg), which need two SQL dialects.

    .venv/bin/python bench/durable_drivers.py [postgresql://127.0.0.1:5432/test]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time

import aiosqlite
import asyncpg
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import create_async_engine

ROWS = 500
POLLS = 2000
meta = MetaData()
usage = Table("bench_usage", meta, Column("hour", Integer, primary_key=True), Column("k", String, primary_key=True),
              Column("n", Integer, nullable=False))
version = Table("bench_version", meta, Column("id", Integer, primary_key=True), Column("v", Integer))


async def sqlalchemy_run(url: str) -> tuple[float, float]:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.drop_all)
        await conn.run_sync(meta.create_all)
        await conn.execute(version.insert().values(id=1, v=1))
    ins = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(usage)
    stmt = ins.on_conflict_do_update(index_elements=["hour", "k"], set_={"n": usage.c.n + ins.excluded.n})
    rows = [{"hour": 1, "k": f"key{i}", "n": 1} for i in range(ROWS)]
    t0 = time.perf_counter()
    for _ in range(5):
        async with engine.begin() as conn:
            await conn.execute(stmt, rows)
    flush = (time.perf_counter() - t0) / 5
    q = select(version.c.v).where(version.c.id == 1)
    t0 = time.perf_counter()
    for _ in range(POLLS):
        async with engine.connect() as conn:
            (await conn.execute(q)).scalar()
    poll = (time.perf_counter() - t0) / POLLS
    async with engine.begin() as conn:
        await conn.run_sync(meta.drop_all)
    await engine.dispose()
    return flush, poll


async def aiosqlite_run(path: str) -> tuple[float, float]:
    async with aiosqlite.connect(path) as db:
        await db.execute("CREATE TABLE IF NOT EXISTS u (hour INT, k TEXT, n INT, PRIMARY KEY (hour, k))")
        await db.execute("CREATE TABLE IF NOT EXISTS v (id INT PRIMARY KEY, v INT)")
        await db.execute("INSERT OR REPLACE INTO v VALUES (1, 1)")
        await db.commit()
        rows = [(1, f"key{i}", 1) for i in range(ROWS)]
        t0 = time.perf_counter()
        for _ in range(5):
            await db.executemany(
                "INSERT INTO u VALUES (?,?,?) ON CONFLICT (hour,k) DO UPDATE SET n = n + excluded.n", rows)
            await db.commit()
        flush = (time.perf_counter() - t0) / 5
        t0 = time.perf_counter()
        for _ in range(POLLS):
            async with db.execute("SELECT v FROM v WHERE id = 1") as cur:
                await cur.fetchone()
        return flush, (time.perf_counter() - t0) / POLLS


async def asyncpg_run(dsn: str) -> tuple[float, float]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    async with pool.acquire() as c:
        await c.execute("DROP TABLE IF EXISTS bu; CREATE TABLE bu (hour INT, k TEXT, n INT, PRIMARY KEY (hour, k));"
                        "DROP TABLE IF EXISTS bv; CREATE TABLE bv (id INT PRIMARY KEY, v INT); INSERT INTO bv VALUES (1,1)")
    rows = [(1, f"key{i}", 1) for i in range(ROWS)]
    t0 = time.perf_counter()
    for _ in range(5):
        async with pool.acquire() as c, c.transaction():
            await c.executemany(
                "INSERT INTO bu VALUES ($1,$2,$3) ON CONFLICT (hour,k) DO UPDATE SET n = bu.n + excluded.n", rows)
    flush = (time.perf_counter() - t0) / 5
    t0 = time.perf_counter()
    for _ in range(POLLS):
        async with pool.acquire() as c:
            await c.fetchval("SELECT v FROM bv WHERE id = 1")
    poll = (time.perf_counter() - t0) / POLLS
    async with pool.acquire() as c:
        await c.execute("DROP TABLE bu; DROP TABLE bv")
    await pool.close()
    return flush, poll


async def main() -> None:
    pg = sys.argv[1] if len(sys.argv) > 1 else "postgresql://127.0.0.1:5432/test"
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "sqlalchemy+aiosqlite": await sqlalchemy_run(f"sqlite+aiosqlite:///{os.path.join(tmp, 'a.db')}"),
            "aiosqlite": await aiosqlite_run(os.path.join(tmp, "b.db")),
            "sqlalchemy+asyncpg": await sqlalchemy_run(pg.replace("postgresql://", "postgresql+asyncpg://", 1)),
            "asyncpg": await asyncpg_run(pg),
        }
    print(f"{'candidate':24} {'flush of ' + str(ROWS) + ' rows':>20} {'version poll':>14}")
    for name, (flush, poll) in results.items():
        print(f"{name:24} {flush * 1000:17.1f} ms {poll * 1e6:11.0f} us")


if __name__ == "__main__":
    asyncio.run(main())
