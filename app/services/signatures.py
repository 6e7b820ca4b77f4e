"""Where Gemini 3 thought signatures wait between a tool-call answer and the client's next turn.

OpenAI clients know nothing of ``thoughtSignature`` and send tool calls back with only id, name and
arguments; Gemini 3 rejects a replayed call without its signature. The gateway remembers each signature by
the tool-call id it handed out (short ids keep clients happy) and puts it back on the next request.
Memory-bounded LRU with a time limit; a lost entry degrades to Gemini's documented skip value, not an error.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping


class SignatureCache:
    def __init__(self, capacity: int = 50_000, ttl: float = 6 * 3600.0) -> None:
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl

    async def put_many(self, signatures: Mapping[str, str]) -> None:
        expires = time.monotonic() + self._ttl
        for call_id, signature in signatures.items():
            self._items[call_id] = (expires, signature)
            self._items.move_to_end(call_id)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    async def get_many(self, call_ids: Iterable[str]) -> dict[str, str]:
        now = time.monotonic()
        found: dict[str, str] = {}
        for call_id in call_ids:
            item = self._items.get(call_id)
            if item is not None and item[0] > now:
                found[call_id] = item[1]
        return found
