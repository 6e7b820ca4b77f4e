"""Brings disabled keys back: every ``CHECK_INTERVAL`` each disabled key gets one quota-free models.get.

Only disabled keys are probed; a key that is merely cooling waits out its cooldown untouched (a probe would
spend requests against the very quota that is exhausted). A few probes run at a time so that a large pool of
bad keys cannot burst the upstream. A key comes back when its probe answers 2xx; any other answer leaves it
disabled with its original reason.
"""

from __future__ import annotations

import asyncio
import logging

from app.keys import KeyManager, Outcome, OutcomeKind
from app.upstream import GeminiClient

log = logging.getLogger("gateway.prober")


class KeyProber:
    def __init__(self, keys: KeyManager, client: GeminiClient, *, interval: float, concurrency: int = 4) -> None:
        self._keys = keys
        self._client = client
        self._interval = interval
        self._limit = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self.probes = 0
        self.revived = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="key-prober")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a probe round must never kill the loop
                log.exception("probe round failed")

    async def run_once(self) -> int:
        """Probe every disabled key once; returns how many came back."""
        disabled = await self._keys.disabled_ids()
        results = await asyncio.gather(*(self._probe(kid) for kid in disabled))
        return sum(results)

    async def _probe(self, key_id: str) -> bool:
        async with self._limit:
            try:
                outcome = await self.check(key_id)
            except KeyError:
                return False  # removed meanwhile
            return outcome.kind is OutcomeKind.OK

    async def check(self, key_id: str) -> Outcome:
        """Probe one key now (the loop, or an operator); a passing key goes back into rotation.
        Raises ``KeyError`` (``UnknownKey``) for an id the pool does not have."""
        outcome = await self._client.probe(self._keys.lease_for(key_id))
        self.probes += 1
        if outcome.kind is OutcomeKind.OK:
            await self._keys.enable(key_id)
            self.revived += 1
            log.info("key %s passed its probe and is back in rotation", key_id)
        elif outcome.kind is OutcomeKind.KEY_INVALID:  # Google says the key itself is bad: out of rotation
            await self._keys.disable(key_id, f"check failed: {outcome.reason or 'key_invalid'}"[:300])
        return outcome

    def stats(self) -> dict[str, int]:
        return {"probes": self.probes, "revived": self.revived}
