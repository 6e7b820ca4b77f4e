"""``DurableState``: the durable store wired into one gateway process.

* At start: migrate, seed ``API_KEYS`` / ``ALLOWED_TOKENS``, load the key set and the tokens.
* Every ``STATE_POLL_INTERVAL``: read the version row; if it moved (a change here or on another worker or
  replica), reload the pool's key set with each key's weight, tier and model lists
  (``KeyManager.replace_keys``), the keys' routes and the token registry.
* Every ``USAGE_FLUSH_INTERVAL``: write the usage buffer in one batch; hourly: prune past the retention.
* On the request path only in-memory counting: ``on_report`` (every upstream answer) and ``UsageTap``
  (every finished call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from app.keys import KeyManager, Outcome
from app.net.routes import RouteTable
from app.observability.events import EventSink, Interaction
from app.state.policy import TokenRegistry

from .store import DurableStore
from .usage import CURRENT_CALL, UsageBuffer, token_counts

log = logging.getLogger("gateway.state")

_PRUNE_EVERY = 3600.0


class DurableState:
    def __init__(self, store: DurableStore, keys: KeyManager, registry: TokenRegistry, *,
                 routes: RouteTable | None = None, poll_interval: float = 2.0, flush_interval: float = 10.0, usage_retention_days: int = 90,
                 error_retention_days: int = 14) -> None:
        self.store = store
        self.keys = keys
        self.registry = registry
        self.routes = routes
        self.buffer = UsageBuffer()
        self._poll = poll_interval
        self._flush_every = flush_interval
        self._retention = (usage_retention_days, error_retention_days)
        self._version: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_lock = asyncio.Lock()
        self.stats = {"reloads": 0, "flushes": 0, "flush_errors": 0, "poll_errors": 0}

    async def start(self, seed_keys: list[str], seed_tokens: list[str], projects: dict[str, str]) -> None:
        await self.store.start(seed_keys, seed_tokens, projects)
        await self.refresh(force=True)
        self._tasks = [asyncio.create_task(self._poll_loop(), name="state-poll"),
                       asyncio.create_task(self._flush_loop(), name="usage-flush")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.flush()
        await self.store.close()

    async def refresh(self, force: bool = False) -> bool:
        """Reload keys and tokens if the store's version moved; returns whether it did."""
        version = await self.store.version()
        if not force and version == self._version:
            return False
        pool = await self.store.pool_keys()
        policies = await self.store.token_policies()
        if self.routes is not None:  # before the key set, so a new key never goes out on the wrong route
            self.routes.replace_overrides(await self.store.key_routes())
        self.keys.replace_keys(pool, await self.store.key_policies())  # with them, its weight, tier, lists
        self.registry.replace(policies)
        self._version = version
        self.stats["reloads"] += 1
        log.info("durable state v%d loaded: %d keys in the pool, %d client tokens", version, len(pool),
                 len(policies))
        return True

    async def flush(self) -> None:
        async with self._flush_lock:
            rows, errors = self.buffer.drain()
            try:
                await self.store.flush_usage(rows, errors)
            except Exception:
                self.buffer.restore(rows, errors)
                self.stats["flush_errors"] += 1
                raise
            self.stats["flushes"] += 1

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - the pool keeps its last key set
                self.stats["poll_errors"] += 1
                log.warning("durable state: poll failed (%s); keeping the current keys and tokens",
                            type(exc).__name__)

    async def _flush_loop(self) -> None:
        pruned = 0.0
        while True:
            await asyncio.sleep(self._flush_every)
            try:
                await self.flush()
                if time.time() - pruned >= _PRUNE_EVERY:
                    await self.store.prune(*self._retention)
                    pruned = time.time()
            except Exception as exc:  # noqa: BLE001 - the rows stay buffered for the next flush
                log.warning("durable state: usage flush failed (%s); will retry", type(exc).__name__)

    # -- request-path feeds (memory only) -------------------------------------------------------------------

    def on_report(self, key_id: str, model: str, outcome: Outcome) -> None:
        self.buffer.count_outcome(key_id, model, outcome, time.time())

    def tap(self, inner: EventSink) -> EventSink:
        return UsageTap(inner, self.buffer)


class UsageTap:
    """An EventSink in front of the analytics sink: counts each finished call, then passes it on."""

    enabled = True

    def __init__(self, inner: EventSink, buffer: UsageBuffer) -> None:
        self._inner = inner
        self._buffer = buffer

    @property
    def wants_bodies(self) -> bool:
        return self._inner.wants_bodies

    def publish(self, event: Interaction) -> None:
        call = CURRENT_CALL.get()
        response = event.response if event.response is not None else {"usageMetadata": event.extra.get("usageMetadata")}
        counts = token_counts(response, event.extra.get("usage"))
        self._buffer.count_call(key_id=event.key_id, token_id=call.token_id if call else None,
                                model=event.model, status=event.status, counts=counts,
                                latency_ms=(event.finished - event.started) * 1000.0, now=event.finished)
        if call is not None:
            call.tokens += counts[0] + counts[1] + counts[2]
        if self._inner.enabled:
            self._inner.publish(event)

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    def stats(self) -> dict[str, Any]:
        return self._inner.stats()
