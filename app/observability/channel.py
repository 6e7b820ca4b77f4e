"""A bounded, drop-oldest, single-loop channel between the request path and one exporter.

``asyncio.Queue`` would make the producer choose between blocking (``await put``) and losing the *newest*
event (``put_nowait`` raising ``QueueFull``). Analytics wants the opposite: the request never waits, and when a
collector has been down long enough to fill the buffer, the freshest events are the ones worth keeping. So the
producer side is a plain ``deque`` append (O(1), no await, no exception) that evicts and counts the oldest
items when full, and consumers park on an ``asyncio.Event`` that the producer sets.

Two bounds: a count, and a byte budget fed by the producer's size hint. A count alone would let 10,000
interactions that each carry a long chat history or an inline image pin gigabytes while a collector is down.
Eviction is amortised O(1): each item is evicted at most once.

Not thread-safe by design: every producer runs on the event loop thread, where a lock would be pure cost.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestChannel(Generic[T]):
    __slots__ = ("_items", "_maxsize", "_max_bytes", "_bytes", "_ready", "dropped")

    def __init__(self, maxsize: int, max_bytes: int = 0) -> None:
        """``max_bytes`` 0 means no byte budget. The newest item is always kept, however large."""
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._items: deque[tuple[T, int]] = deque()
        self._maxsize = maxsize
        self._max_bytes = max_bytes
        self._bytes = 0
        self._ready = asyncio.Event()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def put(self, item: T, size: int = 0) -> None:
        """Append without waiting; the oldest items are evicted (and counted in :attr:`dropped`) while the
        channel is over its count or its byte budget."""
        items = self._items
        items.append((item, size))
        self._bytes += size
        while len(items) > self._maxsize or (self._max_bytes and self._bytes > self._max_bytes
                                             and len(items) > 1):
            self._bytes -= items.popleft()[1]
            self.dropped += 1
        if not self._ready.is_set():
            self._ready.set()

    async def get_batch(self, limit: int) -> list[T]:
        """Wait until something is queued, then take up to ``limit`` items, oldest first."""
        items = self._items
        while not items:
            self._ready.clear()
            await self._ready.wait()
        out: list[T] = []
        for _ in range(min(limit, len(items))):
            item, size = items.popleft()
            self._bytes -= size
            out.append(item)
        return out

    def take_all(self) -> list[T]:
        """Empty the channel at once (shutdown accounting)."""
        out = [item for item, _ in self._items]
        self._items.clear()
        self._bytes = 0
        return out
