"""Telling an IP-wide or project-wide rate limit from a key's own.

When several distinct keys are rate-limited within a short window, the limit is not about any one key (the
keys share an egress IP or a Google Cloud project). Trying the remaining keys would only spend their quota on
certain 429s, so the pool pauses the model as a whole, with a pause that doubles while the surge goes on.
"""

from __future__ import annotations

from collections import deque


class SurgeDetector:
    def __init__(self, threshold: int = 3, window: float = 10.0, base: float = 1.0, cap: float = 60.0) -> None:
        self._threshold = max(2, threshold)
        self._window = window
        self._base = base
        self._cap = cap
        self._events: dict[str, deque[tuple[float, str]]] = {}
        self._streak: dict[str, int] = {}
        self.pause_until: dict[str, float] = {}
        self.surges = 0

    def rate_limited(self, key_id: str, model: str, now: float) -> float | None:
        """Record a 429; returns the pause (seconds) when this one completes a surge, else None."""
        events = self._events.setdefault(model, deque())
        events.append((now, key_id))
        while events and events[0][0] < now - self._window:
            events.popleft()
        if len({kid for _, kid in events}) < self._threshold:
            return None
        streak = self._streak[model] = self._streak.get(model, 0) + 1
        # Short and doubling: each key's own cooldown already honours its retryDelay.
        pause = min(self._base * 2.0 ** (streak - 1), self._cap)
        self.pause_until[model] = max(self.pause_until.get(model, 0.0), now + pause)
        events.clear()
        self.surges += 1
        return pause

    def ok(self, model: str) -> None:
        if self._streak:
            self._streak.pop(model, None)

    def paused_for(self, model: str, now: float) -> float | None:
        until = self.pause_until.get(model)
        if until is None:
            return None
        if until <= now:
            del self.pause_until[model]
            return None
        return until - now
