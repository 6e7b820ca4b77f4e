"""A bounded, drop-oldest, single-loop channel between the request path and one exporter.

``asyncio.Queue`` would make the producer choose between blocking (``await put``) and losing the *newest*
event (``put_nowait`` raising ``QueueFull``). Analytics wants the opposite: the request never waits, and when a
collector has been down long enough to fill the buffer, the freshest events are the ones worth keeping. So the
producer side is a plain ``deque`` append (O(1), no await, no exception) that evicts and counts the oldest
item when full, and consumers park on an ``asyncio.Event`` that the producer sets.

Not thread-safe by design: every producer runs on the event loop thread, where a lock would be pure cost.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestChannel(Generic[T]):
    __slots__ = ("_items", "_maxsize", "_ready", "dropped")

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def put(self, item: T) -> None:
        """Append without waiting; when full, the oldest item is evicted and counted in :attr:`dropped`."""
        items = self._items
        if len(items) >= self._maxsize:
            items.popleft()
            self.dropped += 1
        items.append(item)
        if not self._ready.is_set():
            self._ready.set()

    async def get_batch(self, limit: int) -> list[T]:
        """Wait until something is queued, then take up to ``limit`` items, oldest first."""
        items = self._items
        while not items:
            self._ready.clear()
            await self._ready.wait()
        count = min(limit, len(items))
        return [items.popleft() for _ in range(count)]

    def take_all(self) -> list[T]:
        """Empty the channel at once (shutdown accounting)."""
        out = list(self._items)
        self._items.clear()
        return out
