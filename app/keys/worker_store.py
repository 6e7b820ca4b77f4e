"""``WorkerPoolStore``: the memory pool store of one worker among several, without Redis.

What the workers of one machine must agree on goes through the ``WorkerBus`` (app/state/worker_bus.py):
disables (a key found invalid, a failure streak, the operator), enables (the operator, the prober) and long
cooldowns (daily quotas: sharing them saves each other worker one wasted call per key, model and day).
Every pick first checks whether the bus moved (one mmap read) and, if so, applies the new records before
picking; a worker that disables a key publishes it before its next pick can run. So no worker picks a key
after another recorded it invalid. Short cooldowns, failure streaks, counters and the cursor stay per
worker: a per-minute 429 costs each other worker at most one retry on another key, invisible to the client.

A record the bus cannot take (``DATA_DIR`` full, a file-size limit) is applied to this worker alone, with one
warning: the worker keeps honouring what it learned, and requests never fail because of the disk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from app.state.worker_bus import Changes, Record, WorkerBus

from .store import KeyStatus, MemoryPoolStore, Pick

__all__ = ["SHARED_COOLDOWN", "WorkerPoolStore", "compact"]

#: Cooldowns at least this long (seconds) are shared: daily quotas, long RetryInfo delays.
SHARED_COOLDOWN = 300.0

_DISABLE, _ENABLE, _COOL = "d", "e", "c"

log = logging.getLogger(__name__)


class WorkerPoolStore(MemoryPoolStore):
    __slots__ = ("_bus", "_clock", "_unshared", "_write_failed")

    def __init__(self, bus: WorkerBus, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._bus = bus
        self._clock = clock
        #: Disables the bus could not take: kept here, and applied again after a compaction's reset.
        self._unshared: dict[str, tuple[str, float]] = {}
        self._write_failed = 0
        self._sync()

    def _publish(self, record: Record) -> bool:
        """Publish ``record``; False (logged once) when the bus file cannot be written."""
        try:
            self._bus.publish(record)
            return True
        except OSError as exc:
            self._write_failed += 1
            if self._write_failed == 1:
                log.warning("the workers' bus file cannot be written (%s: %s): key disables and long cooldowns "
                            "stay with the worker that saw them until it can", type(exc).__name__,
                            exc.strerror or "write failed")
            return False

    def _sync(self) -> None:
        changes = self._bus.changes()
        if changes is not None:
            self._apply(changes)

    def _apply(self, changes: Changes) -> None:
        if changes.reset:
            self.load_disabled(self._unshared)
        for record in changes.records:
            kind = record[0]
            if kind == _DISABLE:
                self.disable_now(record[1], record[2], record[3])
            elif kind == _ENABLE:
                self.enable_now(record[1])
            elif kind == _COOL:
                self.cool_now(record[4], record[1], record[2], record[3])

    # -- reads: sync first ----------------------------------------------------------------------------------

    async def pick(self, *args: Any, **kwargs: Any) -> Pick:
        if self._bus.moved():
            self._sync()
        return self.pick_now(*args, **kwargs)  # MemoryPoolStore.pick, without a second coroutine

    async def wait(self, *args: Any, **kwargs: Any) -> float | None:
        if self._bus.moved():
            self._sync()
        return await super().wait(*args, **kwargs)

    async def disabled(self, key_ids: Sequence[str]) -> dict[str, str]:
        self._sync()
        return await super().disabled(key_ids)

    async def snapshot(self, key_ids: Sequence[str], now: float) -> dict[str, KeyStatus]:
        self._sync()
        return await super().snapshot(key_ids, now)

    # -- shared writes: publish, then apply like every other worker -----------------------------------------

    async def disable(self, key_id: str, reason: str, now: float | None = None) -> None:
        self._sync()
        if key_id not in self._disabled:  # a key already disabled keeps its first reason
            at = self._clock() if now is None else now
            if self._publish([_DISABLE, key_id, reason, at]):
                self._sync()
            else:
                self._unshared[key_id] = (reason, at)
                self.disable_now(key_id, reason, at)

    async def enable(self, key_id: str) -> None:
        await super().enable(key_id)  # this worker's streaks too
        self._unshared.pop(key_id, None)
        if self._publish([_ENABLE, key_id]):
            self._sync()

    async def cool(self, key_id: str, model: str, until: float, reason: str) -> None:
        await self.cool_many((key_id,), model, until, reason)

    async def cool_many(self, key_ids: Sequence[str], model: str, until: float, reason: str) -> None:
        if until - self._clock() >= SHARED_COOLDOWN and self._publish([_COOL, model, until, reason, list(key_ids)]):
            self._sync()
        else:
            self.cool_now(key_ids, model, until, reason)

    def bus_stats(self) -> dict[str, int]:
        return {**self._bus.stats, "write_failed": self._write_failed}

    async def close(self) -> None:
        self._bus.close()


def compact(records: list[Record], now: float | None = None) -> list[Record]:
    """The records that still matter, in order: the last disable of each key still disabled, and each
    (key, model)'s longest cooldown that has not ended."""
    now = time.time() if now is None else now
    disabled: dict[str, Record] = {}
    cooling: dict[tuple[str, str], tuple[float, str]] = {}
    for record in records:
        kind = record[0]
        if kind == _DISABLE:
            disabled.setdefault(record[1], record)
        elif kind == _ENABLE:
            disabled.pop(record[1], None)
        elif kind == _COOL:
            for kid in record[4]:
                current = cooling.get((kid, record[1]))
                if current is None or record[2] > current[0]:
                    cooling[(kid, record[1])] = (record[2], record[3])
    out: list[Record] = list(disabled.values())
    out += [[_COOL, model, until, reason, [kid]] for (kid, model), (until, reason) in cooling.items()
            if until > now]
    return out
