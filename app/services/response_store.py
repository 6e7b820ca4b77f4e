"""Where ``store: true`` responses wait for ``previous_response_id``, ``GET`` and ``DELETE``.

A record is ``{"response": <Response object>, "history": [<input items before its output>]}`` stored as one
JSON blob, so a continuation costs one read whatever the conversation's length. Memory (default) is an LRU
bounded by count and bytes with a TTL; Redis (``REDIS_URL``) keeps each record under ``<prefix><id>`` with
``PX`` = the TTL and refuses a record over the byte cap, so replicas share the history. A record that cannot be
stored is logged (by size only) and the response still goes out: the client then gets a clear 400 if it
names it, never a silently shortened history.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson

from app.state.redis_link import ERRORS, RedisLink

__all__ = ["MemoryResponseStore", "RedisResponseStore", "ResponseStore", "StoreUnavailable", "build_response_store"]

log = logging.getLogger("gateway.responses")


class StoreUnavailable(Exception):
    """The shared store did not answer; the request gets a 503 rather than a wrong answer."""


class ResponseStore(Protocol):
    async def put(self, response_id: str, record: dict[str, Any]) -> bool: ...
    async def get(self, response_id: str) -> dict[str, Any] | None: ...
    async def delete(self, response_id: str) -> bool: ...
    async def close(self) -> None: ...


class MemoryResponseStore:
    def __init__(self, *, ttl: float, max_count: int, max_bytes: int) -> None:
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._ttl, self._max_count, self._max_bytes = ttl, max_count, max_bytes
        self._bytes = 0

    def _drop(self, response_id: str) -> bool:
        item = self._items.pop(response_id, None)
        if item is None:
            return False
        self._bytes -= len(item[1])
        return True

    async def put(self, response_id: str, record: dict[str, Any]) -> bool:
        blob = orjson.dumps(record)
        if len(blob) > self._max_bytes:
            log.warning("response not stored: %d bytes exceed RESPONSES_MAX_BYTES", len(blob))
            return False
        self._drop(response_id)
        self._items[response_id] = (time.monotonic() + self._ttl, blob)
        self._bytes += len(blob)
        while len(self._items) > self._max_count or self._bytes > self._max_bytes:
            self._drop(next(iter(self._items)))
        return True

    async def get(self, response_id: str) -> dict[str, Any] | None:
        item = self._items.get(response_id)
        if item is None:
            return None
        if item[0] <= time.monotonic():
            self._drop(response_id)
            return None
        self._items.move_to_end(response_id)
        return orjson.loads(item[1])

    async def delete(self, response_id: str) -> bool:
        item = self._items.get(response_id)
        return self._drop(response_id) if item is not None and item[0] > time.monotonic() else False

    async def close(self) -> None:
        self._items.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)


class RedisResponseStore:
    def __init__(self, client: Any, *, ttl: float, max_bytes: int, prefix: str = "gg:resp:",
                 link: RedisLink | None = None) -> None:
        self._redis = client  # bytes, from the process's Redis link
        self._link = link     # its outage state: while Redis is away, answer at once
        if link is not None:
            link.register("responses")
        self._ttl_ms = max(1, int(ttl * 1000))
        self._max_bytes = max_bytes
        self._prefix = prefix

    async def _do(self, op: Any) -> Any:
        if self._link is not None and not self._link.usable():
            op.close()
            raise StoreUnavailable("the response store (Redis) is unavailable")
        try:
            return await op
        except ERRORS as exc:
            if self._link is not None:
                self._link.failed("responses", exc, "call")
            else:
                log.warning("response store unavailable: %s", type(exc).__name__)
            raise StoreUnavailable("the response store (Redis) is unavailable") from None

    async def put(self, response_id: str, record: dict[str, Any]) -> bool:
        blob = orjson.dumps(record)
        if len(blob) > self._max_bytes:
            log.warning("response not stored: %d bytes exceed RESPONSES_MAX_BYTES", len(blob))
            return False
        await self._do(self._redis.set(self._prefix + response_id, blob, px=self._ttl_ms))
        return True

    async def get(self, response_id: str) -> dict[str, Any] | None:
        blob = await self._do(self._redis.get(self._prefix + response_id))
        return orjson.loads(blob) if blob else None

    async def delete(self, response_id: str) -> bool:
        return bool(await self._do(self._redis.delete(self._prefix + response_id)))

    async def close(self) -> None:
        if self._link is None:  # a client of its own; the link closes the shared ones
            await self._redis.aclose()


def build_response_store(link: RedisLink | None, *, ttl: float, max_count: int, max_bytes: int) -> ResponseStore:
    if link is not None:
        return RedisResponseStore(link.client(decode=False, timeout=2.0), ttl=ttl, max_bytes=max_bytes,
                                  link=link)
    return MemoryResponseStore(ttl=ttl, max_count=max_count, max_bytes=max_bytes)
