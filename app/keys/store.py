"""Where the pool's state lives: the ``PoolStore`` protocol and the in-process ``MemoryPoolStore``.

The protocol speaks the pool's language (pick a key, cool a key for a model, disable, count) rather than
get/set, so that each operation can be one atomic step in any backend: a few dict operations here, one Lua
script in ``redis_store.py``. The manager never reads state and writes it back, so replicas sharing Redis
cannot race each other into an inconsistent pool.

Times are epoch seconds passed in by the caller (``now``/``until``): one clock, the manager's, which tests
replace with a fake one. Keys are only ever named by their ``key_id``.

``MemoryPoolStore`` is the embedded default and Redis's fallback. Its methods are ``async`` only to satisfy
the protocol: none of them awaits, so each runs to completion without yielding to the event loop, which is
what makes them atomic under asyncio without locks. It is on the hot path (one ``pick`` and one ``success``
per request), hence the plain dicts, the cached ``Pick`` objects and the lazily pruned cooldowns.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .classify import OutcomeKind

__all__ = ["Cooldown", "KeyStatus", "MemoryPoolStore", "Pick", "PoolStore", "KIND_ORDER", "MAX_CURSORS"]

#: Round-robin cursors kept: cursor names are model names, the clients' choice, so the dict is bounded. The
#: oldest cursor goes first; a forgotten cursor only starts its rotation again at the first key.
MAX_CURSORS = 4096

# Counter layout shared by both stores: one slot per outcome kind, in this order.
KIND_ORDER: tuple[OutcomeKind, ...] = tuple(OutcomeKind)
_KIND_INDEX: dict[OutcomeKind, int] = {kind: i for i, kind in enumerate(KIND_ORDER)}
_OK = _KIND_INDEX[OutcomeKind.OK]
_TRANSIENT = _KIND_INDEX[OutcomeKind.TRANSIENT]


@dataclass(frozen=True, slots=True)
class Pick:
    """Result of ``PoolStore.pick``.

    ``key_id`` is the chosen key, or ``None`` when no key is eligible; then ``wait`` is the number of seconds
    until the earliest cooldown (among keys neither disabled nor excluded) ends, or ``None`` when no such
    cooldown exists, and ``all_disabled`` says whether every key is disabled.
    """

    key_id: str | None
    wait: float | None = None
    all_disabled: bool = False


@dataclass(frozen=True, slots=True)
class Cooldown:
    """A (key, model) cooldown: unusable for ``model`` until ``until`` (epoch seconds), and why."""

    until: float
    reason: str


@dataclass(slots=True)
class KeyStatus:
    """Everything the store knows about one key; for /health and the admin API, never for routing."""

    key_id: str
    disabled: bool = False
    reason: str | None = None
    disabled_at: float | None = None
    failures: int = 0
    stream_failures: int = 0
    cooldowns: dict[str, Cooldown] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None
    last_error_at: float | None = None


class PoolStore(Protocol):
    """Pool state operations; each one is atomic with respect to every other caller of the same store."""

    async def pick(self, key_ids: Sequence[str], model: str, exclude: Collection[str], now: float,
                   cursor: str | None = None) -> Pick:
        """Advance the round-robin cursor named ``cursor`` (default: ``model``; one per rotation, see
        ``rotation.py``) along ``key_ids`` to the next key that is neither disabled, nor cooling for
        ``model``, nor in ``exclude``; return it (or why there is none). ``key_ids`` may name a key several
        times (its weight)."""
        ...

    async def wait(self, key_ids: Sequence[str], model: str, now: float) -> float | None:
        """Seconds until some non-disabled key can serve ``model``: 0.0 if one can now, ``None`` if none ever
        will without an enable (every key disabled, or no keys)."""
        ...

    async def cool(self, key_id: str, model: str, until: float, reason: str) -> None:
        """Make ``key_id`` ineligible for ``model`` until ``until``; never shortens an existing cooldown."""
        ...

    async def cool_many(self, key_ids: Sequence[str], model: str, until: float, reason: str) -> None:
        """``cool`` for several keys in one step (all keys of one Google Cloud project)."""
        ...

    async def disable(self, key_id: str, reason: str, now: float | None = None) -> None:
        """Take the key out of rotation for every model. A key already disabled keeps its first reason."""
        ...

    async def enable(self, key_id: str) -> None:
        """Put the key back in rotation and reset both failure streaks (cooldowns stay)."""
        ...

    async def failure(self, key_id: str, error: str | None = None, now: float | None = None, *,
                      stream: bool = False, tally: bool = True) -> int:
        """Extend the key's consecutive-failure streak (``stream``: its mid-stream streak) and return it;
        ``tally`` also counts a transient outcome (off when the failure was already ``record``-ed)."""
        ...

    async def success(self, key_id: str, stream: bool = False) -> None:
        """Count a success and reset the consecutive-failure streak (``stream``: a cleanly finished stream,
        which also resets the mid-stream streak)."""
        ...

    async def record(self, key_id: str, kind: OutcomeKind, error: str | None = None,
                     now: float | None = None) -> None:
        """Count an outcome that has no other state effect here (``success``/``failure`` count themselves)."""
        ...

    async def disabled(self, key_ids: Sequence[str]) -> dict[str, str]:
        """Disabled keys among ``key_ids`` with their reasons."""
        ...

    async def snapshot(self, key_ids: Sequence[str], now: float) -> dict[str, KeyStatus]:
        """Full state of each key (active cooldowns only)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


class MemoryPoolStore:
    """In-process ``PoolStore``: plain dicts, no locks (no method awaits, so none is interleaved)."""

    __slots__ = ("_cursors", "_disabled", "_cool", "_cool_reason", "_failures", "_stream_failures", "_counts",
                 "_errors", "_picks", "_dry", "_epoch")

    def __init__(self) -> None:
        self._cursors: dict[str, int] = {}
        # cursor -> (until, key_ids, epoch, Pick): a rotation whose walk found no key, remembered so that
        # the picks until ``until`` (its earliest cooldown end) do not walk it again. With tiers that walk is
        # every request's while a whole tier cools (free keys out of daily quota, paid tier 2 serving): a
        # 2,000-key tier's full walk is ~0.8 ms. Only an enable or a disable (``_epoch``), a new key list
        # (another plan) or the time can change the answer: cooldowns are never shortened.
        self._dry: dict[str, tuple[float, Sequence[str], int, Pick]] = {}
        self._epoch = 0
        self._disabled: dict[str, tuple[str, float]] = {}
        # model -> {key_id: until}; model first so that ``pick`` does one lookup per call.
        self._cool: dict[str, dict[str, float]] = {}
        self._cool_reason: dict[str, dict[str, str]] = {}
        self._failures: dict[str, int] = {}  # only non-zero counts are present
        self._stream_failures: dict[str, int] = {}
        self._counts: dict[str, list[int]] = {}
        self._errors: dict[str, tuple[str, float]] = {}
        self._picks: dict[str, Pick] = {}

    # -- hot path -------------------------------------------------------------------------------------------

    async def pick(self, key_ids: Sequence[str], model: str, exclude: Collection[str], now: float,
                   cursor: str | None = None) -> Pick:
        return self.pick_now(key_ids, model, exclude, now, cursor)

    def pick_now(self, key_ids: Sequence[str], model: str, exclude: Collection[str], now: float,
                 cursor: str | None = None) -> Pick:
        """Synchronous ``pick`` (the Redis store's fallback path calls it without a coroutine)."""
        n = len(key_ids)
        if n == 0:
            return _NO_KEYS
        if cursor is None:
            cursor = model
        if self._dry and not exclude:  # with exclusions the wait may differ: an excluded key's end is not it
            dry = self._dry.get(cursor)
            if dry is not None and now < dry[0] and dry[1] is key_ids and dry[2] == self._epoch:
                return dry[3] if dry[0] == _NEVER else Pick(None, dry[0] - now, dry[3].all_disabled)
        cursors = self._cursors
        start = cursors.get(cursor)
        if start is None:
            if len(cursors) >= MAX_CURSORS:
                del cursors[next(iter(cursors))]
            start = 0
        elif start >= n:
            start %= n
        disabled = self._disabled
        cooling = self._cool.get(model)
        earliest: float | None = None
        for i in range(start, start + n):
            idx = i if i < n else i - n
            kid = key_ids[idx]
            if kid in disabled or (exclude and kid in exclude):
                continue
            if cooling:
                until = cooling.get(kid)
                if until is not None:
                    if until > now:
                        if earliest is None or until < earliest:
                            earliest = until
                        continue
                    del cooling[kid]
                    self._cool_reason[model].pop(kid, None)
            cursors[cursor] = idx + 1
            picked = self._picks.get(kid)
            if picked is None:
                picked = self._picks[kid] = Pick(kid)
            return picked
        all_disabled = all(kid in disabled for kid in key_ids)
        picked = Pick(None, None if earliest is None else earliest - now, all_disabled)
        if not exclude:
            if len(self._dry) >= MAX_CURSORS:
                self._dry.clear()
            self._dry[cursor] = (_NEVER if earliest is None else earliest, key_ids, self._epoch, picked)
        return picked

    async def success(self, key_id: str, stream: bool = False) -> None:
        counts = self._counts.get(key_id)
        if counts is None:
            counts = self._counts[key_id] = [0] * len(KIND_ORDER)
        counts[_OK] += 1
        if self._failures:
            self._failures.pop(key_id, None)
        if stream and self._stream_failures:
            self._stream_failures.pop(key_id, None)

    # -- outcomes -------------------------------------------------------------------------------------------

    async def failure(self, key_id: str, error: str | None = None, now: float | None = None, *,
                      stream: bool = False, tally: bool = True) -> int:
        if tally:
            self._count(key_id, _TRANSIENT, error, now)
        streak = self._stream_failures if stream else self._failures
        count = streak.get(key_id, 0) + 1
        streak[key_id] = count
        return count

    async def record(self, key_id: str, kind: OutcomeKind, error: str | None = None,
                     now: float | None = None) -> None:
        self._count(key_id, _KIND_INDEX[kind], error, now)

    def _count(self, key_id: str, index: int, error: str | None, now: float | None) -> None:
        counts = self._counts.get(key_id)
        if counts is None:
            counts = self._counts[key_id] = [0] * len(KIND_ORDER)
        counts[index] += 1
        if error is not None:
            self._errors[key_id] = (error, time.time() if now is None else now)

    async def cool(self, key_id: str, model: str, until: float, reason: str) -> None:
        self.cool_now((key_id,), model, until, reason)

    async def cool_many(self, key_ids: Sequence[str], model: str, until: float, reason: str) -> None:
        self.cool_now(key_ids, model, until, reason)

    def cool_now(self, key_ids: Sequence[str], model: str, until: float, reason: str) -> None:
        cooling = self._cool.setdefault(model, {})
        reasons = self._cool_reason.setdefault(model, {})
        for kid in key_ids:
            current = cooling.get(kid)
            if current is None or until > current:
                cooling[kid] = until
                reasons[kid] = reason

    def disable_now(self, key_id: str, reason: str, at: float) -> None:
        """Synchronous ``disable`` (the Redis store's view applies replicas' changes with it)."""
        if key_id not in self._disabled:
            self._disabled[key_id] = (reason, at)
            self._epoch += 1

    def enable_now(self, key_id: str) -> None:
        """Take the key off the disabled list only (another replica enabled it; streaks are its own)."""
        if self._disabled.pop(key_id, None) is not None:
            self._epoch += 1

    def load_disabled(self, disabled: dict[str, tuple[str, float]]) -> None:
        """Make ``disabled`` the whole disabled list (the Redis store's view reloading the shared one)."""
        self._disabled = dict(disabled)
        self._epoch += 1

    async def disable(self, key_id: str, reason: str, now: float | None = None) -> None:
        self.disable_now(key_id, reason, time.time() if now is None else now)

    async def enable(self, key_id: str) -> None:
        self.enable_now(key_id)
        self._failures.pop(key_id, None)
        self._stream_failures.pop(key_id, None)

    # -- reads ----------------------------------------------------------------------------------------------

    async def wait(self, key_ids: Sequence[str], model: str, now: float) -> float | None:
        disabled = self._disabled
        cooling = self._cool.get(model) or {}
        earliest: float | None = None
        for kid in key_ids:
            if kid in disabled:
                continue
            until = cooling.get(kid)
            if until is None or until <= now:
                return 0.0
            if earliest is None or until < earliest:
                earliest = until
        return None if earliest is None else earliest - now

    async def disabled(self, key_ids: Sequence[str]) -> dict[str, str]:
        disabled = self._disabled
        return {kid: disabled[kid][0] for kid in key_ids if kid in disabled}

    async def snapshot(self, key_ids: Sequence[str], now: float) -> dict[str, KeyStatus]:
        result: dict[str, KeyStatus] = {}
        for kid in key_ids:
            status = KeyStatus(kid, failures=self._failures.get(kid, 0),
                               stream_failures=self._stream_failures.get(kid, 0))
            if kid in self._disabled:
                status.disabled = True
                status.reason, status.disabled_at = self._disabled[kid]
            for model, cooling in self._cool.items():
                until = cooling.get(kid)
                if until is not None and until > now:
                    status.cooldowns[model] = Cooldown(until, self._cool_reason[model].get(kid, ""))
            status.counters = counters_dict(self._counts.get(kid))
            if kid in self._errors:
                status.last_error, status.last_error_at = self._errors[kid]
            result[kid] = status
        return result

    async def close(self) -> None:
        return None


_NO_KEYS = Pick(None, None, False)
_NEVER = float("inf")  # a dry rotation with no cooldown to wait for: every key disabled


def counters_dict(counts: Sequence[int] | None) -> dict[str, int]:
    """Render a per-kind counter row as ``{"requests": total, "ok": n, "rate_limited": n, ...}``."""
    row = list(counts) if counts is not None else [0] * len(KIND_ORDER)
    result = {"requests": sum(row)}
    for kind, value in zip(KIND_ORDER, row):
        result[kind.value] = value
    return result
