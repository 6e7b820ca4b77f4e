"""``KeyManager``: hands out keys and applies the pool action for every classified upstream answer.

The manager holds the raw keys and nothing else stateful that matters across replicas: every decision that
other replicas must see (cursor, cooldowns, disabled keys, failure counts) lives in the ``PoolStore``. The
raw key leaves this module only inside a ``Lease``, whose ``repr`` hides it, so that logging a lease, an
exception or a snapshot cannot leak it.

Pool actions (DESIGN.md, "The key pool"):

* OK: reset the key's consecutive-failure count.
* RATE_LIMITED: cool (key, model) for ``retry_after`` (at least 1 s, so a "0s" cannot cause a hot loop);
  without one, back off exponentially per consecutive 429 on that key+model: 1, 2, 4, ... capped at 60 s.
  That streak is kept per process: it is only a fallback heuristic and costs nothing to relearn.
* QUOTA_EXHAUSTED: cool (key, model) until the next midnight US Pacific time.
* KEY_INVALID: disable the key for all models, with the reason.
* CLIENT_ERROR: nothing, it is not the key's fault (only counted).
* TRANSIENT: count a consecutive failure; ``max_failures`` in a row disables the key. A 503 (model
  overloaded) is retried but never counted: it says nothing about the key.

Keys may carry a project label (``project_of``: key_id -> label). Quotas are per Google Cloud project, so a
429 on one key cools every key of its project for that model.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .classify import Outcome, OutcomeKind
from .ids import key_id as make_key_id
from .quota_time import next_pacific_midnight
from .surge import SurgeDetector
from .store import Pick, PoolStore

__all__ = ["KeyManager", "Lease", "NoKeyAvailable", "UnknownKey"]

log = logging.getLogger(__name__)

_MIN_COOL = 1.0
_BACKOFF_CAP = 60.0
_OK = OutcomeKind.OK
_TRANSIENT = OutcomeKind.TRANSIENT
_RATE_LIMITED = OutcomeKind.RATE_LIMITED
_QUOTA_EXHAUSTED = OutcomeKind.QUOTA_EXHAUSTED
_KEY_INVALID = OutcomeKind.KEY_INVALID


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to send one request with ``key``. One immutable object per key, reused across requests."""

    key: str = field(repr=False)
    key_id: str


class NoKeyAvailable(Exception):
    """No key can serve the request now; ``message`` says why (ids and counts only, never a key).

    ``retry_after``: whole seconds until the earliest cooldown ends (all usable keys cooling), else ``None``.
    ``all_disabled``: every key is disabled (the gateway answers 503). ``no_keys``: none are configured.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, all_disabled: bool = False,
                 no_keys: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.all_disabled = all_disabled
        self.no_keys = no_keys


class UnknownKey(KeyError):
    """An admin operation named a key id that is not in the pool."""


def _describe(outcome: Outcome) -> str:
    """A log/admin-safe one-liner: class, status and reason; never the upstream message (it may echo keys)."""
    reason = outcome.reason or "-"
    return f"{outcome.kind.value} (HTTP {outcome.status}): {reason[:120]}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class KeyManager:
    """Selection (round-robin over eligible keys) and outcome handling for one pool of keys."""

    def __init__(
        self,
        keys: Sequence[str],
        store: PoolStore,
        *,
        max_failures: int = 3,
        clock: Callable[[], float] = time.time,
        project_of: Mapping[str, str] | None = None,
        surge: SurgeDetector | None = None,
    ) -> None:
        self._store = store
        self.surge = surge or SurgeDetector()
        self._max_failures = max(1, max_failures)
        self._clock = clock
        self._project_of: dict[str, str] = dict(project_of or {})
        self._leases: dict[str, Lease] = {}
        self._ids: list[str] = []
        self._groups: dict[str, tuple[str, ...]] = {}
        self._rl_streak: dict[tuple[str, str], int] = {}
        for key in keys:
            self._add(key)
        self._rebuild()

    # -- pool membership ------------------------------------------------------------------------------------

    def _add(self, key: str) -> str | None:
        key = key.strip()
        if not key:
            return None
        kid = make_key_id(key)
        if kid not in self._leases:
            self._leases[kid] = Lease(key, kid)
        return kid

    def _rebuild(self) -> None:
        """Recompute the id list and project groups. The list is replaced, never mutated in place, so a pick
        that is in flight keeps a consistent view."""
        self._ids = list(self._leases)
        by_project: dict[str, list[str]] = {}
        for kid in self._ids:
            project = self._project_of.get(kid)
            if project:
                by_project.setdefault(project, []).append(kid)
        self._groups = {kid: tuple(by_project[self._project_of[kid]]) if self._project_of.get(kid) else (kid,)
                        for kid in self._ids}

    @property
    def key_ids(self) -> list[str]:
        return list(self._ids)

    def has_keys(self) -> bool:
        return bool(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def add_key(self, key: str, project: str | None = None) -> str:
        """Add a key (admin); returns its id. Adding a known key is a no-op. Local to this process."""
        kid = self._add(key)
        if kid is None:
            raise ValueError("empty API key")
        if project:
            self._project_of[kid] = project
        self._rebuild()
        return kid

    def remove_key(self, key_id: str) -> bool:
        """Remove a key by id (admin); its shared state is left to age out. Returns whether it was present."""
        if self._leases.pop(key_id, None) is None:
            return False
        self._project_of.pop(key_id, None)
        self._rl_streak = {k: v for k, v in self._rl_streak.items() if k[0] != key_id}
        self._rebuild()
        return True

    def replace_keys(self, keys: Sequence[tuple[str, str | None]]) -> None:
        """Make ``(key, project)`` pairs the whole pool (the durable store changed). Leases of keys that stay
        are kept, so a request in flight and the shared state of a key are untouched."""
        leases: dict[str, Lease] = {}
        projects: dict[str, str] = {}
        for key, project in keys:
            key = key.strip()
            if not key:
                continue
            kid = make_key_id(key)
            leases.setdefault(kid, self._leases.get(kid) or Lease(key, kid))
            if project:
                projects[kid] = project
        self._leases, self._project_of = leases, projects
        self._rl_streak = {k: v for k, v in self._rl_streak.items() if k[0] in leases}
        self._rebuild()

    def lease_for(self, key_id: str) -> Lease:
        """The lease of a specific key, for the prober of disabled keys; bypasses selection."""
        lease = self._leases.get(key_id)
        if lease is None:
            raise UnknownKey(key_id)
        return lease

    # -- hot path -------------------------------------------------------------------------------------------

    async def acquire(self, model: str, exclude: Collection[str] = ()) -> Lease:
        """Next eligible key for ``model`` (round-robin), skipping ids in ``exclude`` (already tried).

        Raises ``NoKeyAvailable`` when there is none.
        """
        ids = self._ids
        if not ids:
            raise NoKeyAvailable("no API keys are configured", no_keys=True)
        if self.surge.pause_until:
            paused = self.surge.paused_for(model, self._clock())
            # Only the pause holds back a key that could serve now; otherwise the usual answer says why.
            if paused is not None and await self.wait_time(model) == 0.0:
                raise NoKeyAvailable(
                    f"several API keys were rate-limited at once for model '{model}' (an IP- or project-wide "
                    f"limit): the pool is backing off; retry in {math.ceil(paused)} s",
                    retry_after=float(math.ceil(paused)))
        picked = await self._store.pick(ids, model, exclude, self._clock())
        kid = picked.key_id
        if kid is not None:
            lease = self._leases.get(kid)
            if lease is not None:
                return lease
            # Removed by an admin while the pick was in flight: try again without it.
            return await self.acquire(model, {*exclude, kid})
        raise await self._unavailable(model, picked, ids, exclude)

    async def report(self, lease: Lease, model: str, outcome: Outcome) -> None:
        """Apply the pool action for ``outcome`` of a request sent with ``lease`` for ``model``."""
        kind = outcome.kind
        kid = lease.key_id
        if kind is _OK:
            if self._rl_streak:
                self._rl_streak.pop((kid, model), None)
                self.surge.ok(model)
            await self._store.success(kid)
            return
        now = self._clock()
        error = _describe(outcome)
        if kind is _TRANSIENT and outcome.status == 503:
            # UNAVAILABLE is Google's capacity, not the key: retried elsewhere, never held against the key.
            await self._store.record(kid, kind, error, now)
            return
        if kind is _TRANSIENT:
            count = await self._store.failure(kid, error, now)
            if count >= self._max_failures:
                reason = f"{count} consecutive transient failures (last: {outcome.reason or outcome.status})"
                await self._store.disable(kid, reason, now)
                log.warning("key %s disabled: %s", kid, reason)
            return
        await self._store.record(kid, kind, error, now)
        if kind is _RATE_LIMITED:
            pause = self.surge.rate_limited(kid, model, now)
            if pause is not None:
                log.warning("%s keys rate-limited within a short window for %s: pausing the pool for %.1f s",
                            "several", model, pause)
            delay = self._rate_limit_delay(kid, model, outcome.retry_after)
            await self._store.cool_many(self._groups.get(kid, (kid,)), model, now + delay,
                                        f"rate_limited: {outcome.reason or 'HTTP 429'}")
        elif kind is _QUOTA_EXHAUSTED:
            await self._store.cool_many(self._groups.get(kid, (kid,)), model, next_pacific_midnight(now),
                                        f"quota_exhausted: {outcome.reason or 'daily quota'}")
        elif kind is _KEY_INVALID:
            reason = f"{outcome.reason or 'key rejected'} (HTTP {outcome.status})"
            await self._store.disable(kid, reason, now)
            log.warning("key %s disabled: %s", kid, reason)

    def _rate_limit_delay(self, kid: str, model: str, retry_after: float | None) -> float:
        streak_key = (kid, model)
        streak = self._rl_streak.get(streak_key, 0) + 1
        self._rl_streak[streak_key] = streak
        if retry_after is not None:
            return max(retry_after, _MIN_COOL)
        return min(_MIN_COOL * 2.0 ** min(streak - 1, 16), _BACKOFF_CAP)

    # -- no key available -----------------------------------------------------------------------------------

    async def _unavailable(self, model: str, picked: Pick, ids: Sequence[str],
                           exclude: Collection[str]) -> NoKeyAvailable:
        total = len(ids)
        if picked.all_disabled:
            reasons = await self._store.disabled(ids)
            tally = Counter(reasons.values())
            why = "; ".join(f"{n} × {reason}" for reason, n in tally.most_common(5))
            return NoKeyAvailable(
                f"all {_plural(total, 'API key')} are disabled" + (f" ({why})" if why else ""),
                all_disabled=True,
            )
        tried = sum(1 for kid in ids if kid in exclude) if exclude else 0
        if picked.wait is not None:
            retry_after = float(max(1, math.ceil(picked.wait)))
            extra = f", {tried} already tried for this request" if tried else ""
            return NoKeyAvailable(
                f"every usable API key for model '{model}' is cooling down after a rate limit or an exhausted "
                f"daily quota ({_plural(total, 'key')} in the pool{extra}); retry in {retry_after:.0f} s",
                retry_after=retry_after,
            )
        return NoKeyAvailable(
            f"every usable API key for model '{model}' was already tried for this request "
            f"({tried} tried, {_plural(total, 'key')} in the pool)",
        )

    # -- reads and admin ------------------------------------------------------------------------------------

    async def wait_time(self, model: str) -> float | None:
        """Seconds until a non-disabled key can serve ``model`` (0.0: one can now); ``None`` if no key will
        without an enable. Drives the "wait for the earliest cooldown within MAX_WAIT" decision."""
        if not self._ids:
            return None
        return await self._store.wait(self._ids, model, self._clock())

    async def snapshot(self) -> list[dict[str, Any]]:
        """Per-key state for /health and the admin API: ids only, never a raw key."""
        now = self._clock()
        ids = self._ids
        statuses = await self._store.snapshot(ids, now)
        result: list[dict[str, Any]] = []
        for kid in ids:
            st = statuses[kid]
            state = "disabled" if st.disabled else ("cooling" if st.cooldowns else "active")
            result.append({
                "id": kid,
                "project": self._project_of.get(kid),
                "state": state,
                "reason": st.reason,
                "disabled_at": st.disabled_at,
                "failures": st.failures,
                "cooldowns": {
                    model: {"until": cd.until, "remaining": round(cd.until - now, 3), "reason": cd.reason}
                    for model, cd in sorted(st.cooldowns.items())
                },
                "counters": st.counters,
                "last_error": st.last_error,
                "last_error_at": st.last_error_at,
            })
        return result

    async def summary(self) -> dict[str, int]:
        """Counts by state, for /health."""
        counts = {"total": len(self._ids), "active": 0, "cooling": 0, "disabled": 0}
        for entry in await self.snapshot():
            counts[entry["state"]] += 1
        return counts

    async def disabled_ids(self) -> list[str]:
        """Ids of disabled keys, in pool order (for the prober)."""
        reasons = await self._store.disabled(self._ids)
        return [kid for kid in self._ids if kid in reasons]

    async def enable(self, key_id: str) -> None:
        """Put a key back in rotation (admin or prober); cooldowns are kept."""
        self.lease_for(key_id)
        await self._store.enable(key_id)
        log.info("key %s enabled", key_id)

    async def disable(self, key_id: str, reason: str = "disabled by admin") -> None:
        """Take a key out of rotation for every model (admin)."""
        self.lease_for(key_id)
        await self._store.disable(key_id, reason, self._clock())
        log.warning("key %s disabled: %s", key_id, reason)
