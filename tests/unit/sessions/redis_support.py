"""Redis for the sessions suites: a real one at 127.0.0.1:6379, required (a skipped suite would let the shared
path rot), with every key of a test under its own prefix and removed afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis

REDIS_URL = "redis://127.0.0.1:6379/0"
DEAD_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@asynccontextmanager
async def redis_prefix() -> AsyncIterator[str]:
    client = aioredis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the suite cannot run
        await client.aclose()
        pytest.fail(f"Redis is required at {REDIS_URL} for the sessions store suite: {exc!r}")
    prefix = f"gg:test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
