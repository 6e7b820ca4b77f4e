"""``KeyManager``: hands out keys and applies the pool action for every classified upstream answer.

The manager holds the raw keys and nothing else stateful that matters across replicas: every decision that
other replicas must see (cursor, cooldowns, disabled keys, failure counts) lives in the ``PoolStore``. The
raw key leaves this module only inside a ``Lease``, whose ``repr`` hides it, so that logging a lease, an
exception or a snapshot cannot leak it.

``lease()`` is the retry loop's one entry: it prefers a key the request has not tried, falls back to a tried
one when every untried key is gone, waits for a cooldown that ends within ``max_wait``, and takes the key's
concurrency slot (``max_concurrent``). The ``Lease`` holds that slot until released and reports its outcome
exactly once.

Pool actions (docs/architecture.md, "The key pool"):

* OK: reset the key's consecutive-failure count (a cleanly finished stream also resets its stream count).
* RATE_LIMITED: cool (key, model) for ``retry_after`` (at least 1 s, so a "0s" cannot cause a hot loop);
  without one, back off exponentially per consecutive 429 on that key+model: 1, 2, 4, ... capped at 60 s.
  That streak is kept per process: it is only a fallback heuristic and costs nothing to relearn.
* QUOTA_EXHAUSTED: cool (key, model) until the next midnight US Pacific time.
* KEY_INVALID: disable the key for all models, with the reason.
* CLIENT_ERROR: nothing, it is not the key's fault (only counted).
* TRANSIENT (500, 502, 504, timeout, reset) before a stream commits: held in the request's account and
  charged when the request ends (``accounting.py``): to the failed key when the same request succeeded
  elsewhere, to nobody when it failed the same way on two keys (the request's fault), else to the first
  failed key. One request charges at most one key, once. A 503 (model overloaded) is retried but never
  charged: it says nothing about the key.
* TRANSIENT after a stream committed (a mid-stream break or a truncated stream): counted in the key's *stream*
  streak, which only a cleanly finished stream on that key resets (a non-stream success says nothing about
  its streams).

Disable rule: a key is disabled when a streak (calls, or streams) reaches ``max_failures`` *and* another key
served a request (for streams: finished a stream) since the streak began. Without that evidence the failures
are the upstream's or the requests' (a slow spell, a model whose streams all break), and benching keys would
only turn them into 503s for everyone. The evidence is kept per process; the counts are shared.

Selection order (``rotation.py``, policies in ``key_policy.py``): a pinned owner, then a conversation's bound
key (while no key of an earlier tier than its own can serve), then the model's rotations, preferred tier
first: a tier is used only while no key of the tiers before it can serve the request (disabled, cooling,
already tried), and each rotation is a smooth weighted cycle.
A key whose model lists exclude the model is never in its rotations, never served as a pin or a binding,
and never the last resort; when no key may serve the model at all, ``ModelNotServed`` (404) says so.

Keys may carry a project label (``project_of``: key_id -> label). Quotas are per Google Cloud project, so a
429 on one key cools every key of its project for that model.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from app.errors import (AllKeysDisabled, ModelNotServed, NoKeyAvailable, NoKeysConfigured, OwnerCooling,
                        OwnerDisabled, PoolExhausted, PoolQuotaExhausted, PoolRateLimited)

from .accounting import Charge, RequestAccount, countable
from .classify import Outcome, OutcomeKind
from .ids import key_id as make_key_id
from .key_policy import KeyPolicies
from .options import PoolOptions
from .quota_time import next_pacific_midnight
from .rotation import Plan, Planner
from .surge import SurgeDetector
from .store import Pick, PoolStore

__all__ = ["KeyManager", "Lease", "NoKeyAvailable", "UnknownKey", "not_served"]

log = logging.getLogger(__name__)

_MIN_COOL = 1.0
#: A cooldown ending this close to Pacific midnight is a daily-quota cooldown (clocks of replicas differ).
_DAILY_SLACK = 5.0
_BACKOFF_CAP = 60.0
_OK = OutcomeKind.OK
_TRANSIENT = OutcomeKind.TRANSIENT
_RATE_LIMITED = OutcomeKind.RATE_LIMITED
_QUOTA_EXHAUSTED = OutcomeKind.QUOTA_EXHAUSTED
_KEY_INVALID = OutcomeKind.KEY_INVALID


class Lease:
    """The right to send one attempt with ``key``: holds the key's concurrency slot until ``release()`` and
    reports its outcome to the pool exactly once (``report``; later reports are ignored).

    A lease bound to a request's account defers a pre-commit transient failure to the account's verdict;
    after ``commit()`` (a stream's first event) its report is the stream's ending. A bare lease (``acquire``,
    ``lease_for``) reports straight to the pool.
    """

    __slots__ = ("key", "key_id", "_pool", "_model", "_account", "_release", "_reported", "_stream")

    def __init__(self, key: str, key_id: str, pool: KeyManager | None = None, model: str = "",
                 account: RequestAccount | None = None, release: Callable[[], None] | None = None) -> None:
        self.key = key
        self.key_id = key_id
        self._pool = pool
        self._model = model
        self._account = account
        self._release = release
        self._reported = False
        self._stream = False

    def __repr__(self) -> str:
        return f"Lease(key_id={self.key_id!r})"

    @property
    def model(self) -> str:
        return self._model

    @property
    def reported(self) -> bool:
        return self._reported

    async def report(self, outcome: Outcome) -> None:
        """Apply the pool action for this attempt's outcome, once."""
        if self._reported or self._pool is None:
            return
        self._reported = True
        await self._pool._outcome(self, self._model, outcome, self._account, self._stream)

    async def commit(self) -> None:
        """The stream answered 200 and sent its first event: the request succeeded here, so its account is
        settled; the one ``report`` still to come is how the stream ended."""
        self._stream = True
        if self._pool is not None and self._account is not None:
            await self._pool.settle(self._account, succeeded_on=self.key_id)

    def release(self) -> None:
        """Free the key's concurrency slot (idempotent)."""
        release, self._release = self._release, None
        if release is not None:
            release()


class UnknownKey(KeyError):
    """An admin operation named a key id that is not in the pool."""


def _describe(outcome: Outcome) -> str:
    """A log/admin-safe one-liner: class, status and reason; never the upstream message (it may echo keys)."""
    reason = outcome.reason or "-"
    return f"{outcome.kind.value} (HTTP {outcome.status}): {reason[:120]}"


def _either(a: Pick, b: Pick) -> Pick:
    """Why two rotations had no key, as one answer: the earlier cooldown end; all disabled if both are."""
    waits = [w for w in (a.wait, b.wait) if w is not None]
    return Pick(None, min(waits) if waits else None, a.all_disabled and b.all_disabled)


def not_served(model: str) -> ModelNotServed:
    """The 404 for a model every key's lists exclude (a call, or a model listing's GET of it)."""
    return ModelNotServed(f"no API key of this gateway may be sent model '{model}': every key's model "
                          f"allowlist or blocklist excludes it")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _Witness:
    """Who served last, enough to answer "did a key other than K serve after mark m?" in O(1), whatever the
    pool's size: the latest success and the latest success by a different key."""

    __slots__ = ("_gen", "_last", "_last_gen", "_other_gen")

    def __init__(self) -> None:
        self._gen = 0
        self._last: str | None = None
        self._last_gen = 0
        self._other_gen = 0

    def mark(self) -> int:
        return self._gen

    def saw(self, kid: str) -> None:
        self._gen += 1
        if kid != self._last:
            self._other_gen, self._last = self._last_gen, kid
        self._last_gen = self._gen

    def elsewhere_since(self, kid: str, mark: int) -> bool:
        latest_other = self._last_gen if self._last != kid else self._other_gen
        return latest_other > mark


class KeyManager:
    """Selection (tiers, then smooth weighted round-robin over eligible keys), leases, and outcome handling
    for one pool of keys."""

    def __init__(
        self,
        keys: Sequence[str],
        store: PoolStore,
        *,
        options: PoolOptions = PoolOptions(),
        clock: Callable[[], float] = time.time,
        project_of: Mapping[str, str] | None = None,
        surge: SurgeDetector | None = None,
        policies: KeyPolicies | None = None,
    ) -> None:
        self._store = store
        self.policies = policies or KeyPolicies()
        self.surge = surge or SurgeDetector()
        self._max_failures = max(1, options.max_failures)
        self._max_wait = options.max_wait
        self._max_concurrent = options.max_concurrent
        self._clock = clock
        self._project_of: dict[str, str] = dict(project_of or {})
        self._keys: dict[str, str] = {}
        self._ids: list[str] = []
        self._groups: dict[str, tuple[str, ...]] = {}
        self._planner = Planner([], self.policies)
        self._plans: Mapping[str, Plan] = self._planner.plans
        self._rl_streak: dict[tuple[str, str], int] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        # The disable rule's evidence, per process: key_id -> the witness mark when its call (stream) failure
        # streak began, or None once the streak is known to be the key's (the same request succeeded
        # elsewhere). Only keys with a live streak are present, so a success costs nothing otherwise.
        self._streaks: dict[str, int | None] = {}
        self._stream_streaks: dict[str, int | None] = {}
        self._served = _Witness()
        self._streams_served = _Witness()
        for key in keys:
            self._add(key)
        self._rebuild()

    # -- pool membership ------------------------------------------------------------------------------------

    def _add(self, key: str) -> str | None:
        key = key.strip()
        if not key:
            return None
        kid = make_key_id(key)
        if kid not in self._keys:
            self._keys[kid] = key
        return kid

    def _rebuild(self) -> None:
        """Recompute the id list, project groups and rotation plans. The list is replaced, never mutated in
        place, so a pick that is in flight keeps a consistent view."""
        self._ids = list(self._keys)
        self._planner = Planner(self._ids, self.policies)
        self._plans = self._planner.plans  # read first on the hot path: one dict lookup per pick
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
        if self._keys.pop(key_id, None) is None:
            return False
        self._project_of.pop(key_id, None)
        self._rl_streak = {k: v for k, v in self._rl_streak.items() if k[0] != key_id}
        self._streaks.pop(key_id, None)
        self._stream_streaks.pop(key_id, None)
        self._rebuild()
        return True

    def replace_keys(self, keys: Sequence[tuple[str, str | None]],
                     policies: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Make ``(key, project)`` pairs the whole pool (the durable store changed), with the store's policy
        fields per key id when given. Leases of keys that stay are kept, so a request in flight and the
        shared state of a key are untouched."""
        if policies is not None:
            self.policies.replace_overrides(policies)
        pool: dict[str, str] = {}
        projects: dict[str, str] = {}
        for key, project in keys:
            key = key.strip()
            if not key:
                continue
            kid = make_key_id(key)
            pool.setdefault(kid, key)
            if project:
                projects[kid] = project
        self._keys, self._project_of = pool, projects
        self._rl_streak = {k: v for k, v in self._rl_streak.items() if k[0] in pool}
        self._rebuild()

    def lease_for(self, key_id: str) -> Lease:
        """A bare lease of a specific key (no slot, reports straight to the pool), for the prober of disabled
        keys; bypasses selection."""
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownKey(key_id)
        return Lease(key, key_id, self)

    # -- hot path -------------------------------------------------------------------------------------------

    async def lease(self, account: RequestAccount, deadline: float) -> Lease:
        """The next attempt's key for ``account``'s request, holding the key's concurrency slot.

        Prefers a key the request has not tried; when every untried key is gone (tried, disabled, cooling
        without an end in sight) a tried one that failed transiently may still serve. Waits for a cooldown
        that ends within ``max_wait`` and before ``deadline`` (``time.monotonic()``); otherwise raises
        ``NoKeyAvailable``.
        """
        model = account.model
        while True:
            try:
                kid = await self._choose(account)
                break
            except NoKeyAvailable as exc:
                if account.tried and isinstance(exc, PoolExhausted):
                    try:
                        kid = await self._pick(model, ())
                        break
                    except NoKeyAvailable as again:
                        exc = again
                remaining = deadline - time.monotonic()
                if exc.retry_after is not None and exc.retry_after <= min(self._max_wait, remaining):
                    await asyncio.sleep(max(exc.retry_after, 0.05))
                    continue
                raise exc
        account.tried.add(kid)
        release = await self._take_slot(kid) if self._max_concurrent else None
        return Lease(self._keys[kid], kid, self, model, account, release)

    async def _choose(self, account: RequestAccount) -> str:
        """The pinned key (or why it cannot serve), the preferred key on a first attempt while it is eligible
        and the pool is not paused, else the next key in rotation."""
        if account.pinned is not None:
            return await self._owner(account.pinned, account.model)
        if (account.prefer is not None and not account.tried and not self._paused(account.model)
                and self.policies.of(account.prefer).allows(account.model)
                and not await self._earlier_tier_free(account.prefer, account.model)):
            try:
                return await self._owner(account.prefer, account.model)
            except NoKeyAvailable:
                pass  # the bound key cannot serve now: the conversation moves (the caller rebinds it)
        return await self._pick(account.model, account.tried)

    async def _earlier_tier_free(self, key_id: str, model: str) -> bool:
        """Whether a key of a tier before ``key_id``'s can serve ``model`` now. A conversation bound to a
        fallback key while its betters were cooling goes back to them once they can serve, as any other
        request does: a binding is kept for the implicit cache, not to spend a paid tier on free traffic.
        A pool of one tier (the common case) pays one attribute read."""
        plan = self._plans.get(model) or self._planner.plan(model)
        if len(plan.rotations) < 2:
            return False
        tier, now = self.policies.of(key_id).tier, self._clock()
        for rotation in plan.rotations:
            if rotation.tier >= tier:
                return False
            if await self._store.wait(rotation.ids, model, now) == 0.0:
                return True
        return False

    async def acquire_owner(self, key_id: str, model: str) -> Lease:
        """A bare lease of ``key_id`` if it can serve ``model`` now, else :class:`OwnerUnavailable`."""
        kid = await self._owner(key_id, model)
        return Lease(self._keys[kid], kid, self, model)

    def _paused(self, model: str) -> bool:
        return bool(self.surge.pause_until) and self.surge.paused_for(model, self._clock()) is not None

    async def _owner(self, key_id: str, model: str) -> str:
        """``key_id`` if it can serve ``model`` now (no rotation, no cursor move; one store read), else
        :class:`OwnerUnavailable` saying why: removed, disabled (with its reason) or cooling (``retry_after``)."""
        if key_id not in self._keys:
            raise OwnerDisabled(f"the API key {key_id} that owns this resource is no longer in the pool")
        if not self.policies.of(key_id).allows(model):
            raise ModelNotServed(f"the API key {key_id} that owns this resource may not be sent model "
                                 f"'{model}' (its model allowlist or blocklist excludes it)")
        wait = await self._store.wait((key_id,), model, self._clock())
        if wait == 0.0:
            return key_id
        if wait is None:
            reason = (await self._store.disabled((key_id,))).get(key_id, "disabled")
            raise OwnerDisabled(f"the API key {key_id} that owns this resource is disabled ({reason[:120]})")
        retry_after = float(max(1, math.ceil(wait)))
        raise OwnerCooling(f"the API key {key_id} that owns this resource is cooling down for model '{model}' "
                           f"after a rate limit or an exhausted quota; retry in {retry_after:.0f} s",
                           retry_after=retry_after)

    async def _take_slot(self, key_id: str) -> Callable[[], None]:
        """Bound concurrent upstream requests per key so that a burst queues here instead of piling onto one
        key."""
        slot = self._slots.get(key_id)
        if slot is None:
            slot = self._slots[key_id] = asyncio.Semaphore(self._max_concurrent)
        await slot.acquire()
        return slot.release

    async def acquire(self, model: str, exclude: Collection[str] = ()) -> Lease:
        """A bare lease of the next eligible key for ``model`` (round-robin), skipping ids in ``exclude``.

        Raises ``NoKeyAvailable`` when there is none. No waiting, no slot: ``lease()`` is the loop's entry.
        """
        kid = await self._pick(model, exclude)
        return Lease(self._keys[kid], kid, self, model)

    async def _pick(self, model: str, exclude: Collection[str]) -> str:
        if not self._ids:
            raise NoKeysConfigured("no API keys are configured: set API_KEYS")
        plan = self._plans.get(model)
        if plan is None:
            plan = self._planner.plan(model)
        if self.surge.pause_until:
            paused = self.surge.paused_for(model, self._clock())
            # Only the pause holds back a key that could serve now; otherwise the usual answer says why.
            if paused is not None and await self.wait_time(model) == 0.0:
                raise PoolRateLimited(
                    f"several API keys were rate-limited at once for model '{model}' (an IP- or project-wide "
                    f"limit): the pool is backing off; retry in {math.ceil(paused)} s",
                    retry_after=float(math.ceil(paused)))
        now = self._clock()
        first: Pick | None = None
        for rotation in plan.rotations:  # preferred tier first; the next only when none of it can serve
            picked = await self._store.pick(rotation.ids, model, exclude, now, rotation.cursor)
            kid = picked.key_id
            if kid is not None:
                if kid in self._keys:
                    return kid
                # Removed by an admin while the pick was in flight: try again without it.
                return await self._pick(model, {*exclude, kid})
            first = picked if first is None else _either(first, picked)
        if first is None:
            raise not_served(model)
        raise await self._unavailable(model, first, plan.ids, exclude)

    async def settle(self, account: RequestAccount, *, succeeded_on: str | None = None) -> None:
        """The request is over: apply its account's one charge, if any (idempotent)."""
        charge = account.settle(succeeded_on=succeeded_on)
        if charge is not None:
            await self._charge(charge)

    async def report(self, lease: Lease, model: str, outcome: Outcome) -> None:
        """Apply the pool action for ``outcome`` of a lone attempt with ``lease`` for ``model`` at once (no
        request account: a transient failure is charged without evidence)."""
        await self._outcome(lease, model, outcome, None, False)

    async def _outcome(self, lease: Lease, model: str, outcome: Outcome, account: RequestAccount | None,
                       stream: bool) -> None:
        kind = outcome.kind
        kid = lease.key_id
        if kind is _OK:
            if self._rl_streak:
                self._rl_streak.pop((kid, model), None)
                self.surge.ok(model)
            if self._streaks or self._stream_streaks:
                self._saw_ok(kid, stream)
            await self._store.success(kid, stream)
            if account is not None and not account.settled:
                await self.settle(account, succeeded_on=kid)
            return
        now = self._clock()
        if kind is _TRANSIENT:
            if not countable(outcome):
                # UNAVAILABLE is Google's capacity, not the key: retried elsewhere, never held against the key.
                await self._store.record(kid, kind, _describe(outcome), now)
            elif stream:
                await self._charge(Charge(kid, outcome, False), stream=True, tally=True)
            elif account is not None and not account.settled:
                await self._store.record(kid, kind, _describe(outcome), now)
                account.note(kid, outcome)
            else:
                await self._charge(Charge(kid, outcome, False), tally=True)
            return
        error = _describe(outcome)
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

    def _saw_ok(self, kid: str, stream: bool) -> None:
        """A success on ``kid`` while some streak is live: its own streaks end, the witnesses take note."""
        self._streaks.pop(kid, None)
        self._served.saw(kid)
        if stream:
            self._stream_streaks.pop(kid, None)
            self._streams_served.saw(kid)

    async def _charge(self, charge: Charge, *, stream: bool = False, tally: bool = False) -> None:
        """Extend a key's failure streak by one; disable it when the streak is long and evidenced. ``tally``:
        also count the outcome (a request's deferred failures were counted when they happened)."""
        kid, outcome = charge.key_id, charge.outcome
        if kid not in self._keys:
            return
        now = self._clock()
        count = await self._store.failure(kid, _describe(outcome) if tally else None, now, stream=stream,
                                          tally=tally)
        if stream:
            streaks, witness = self._stream_streaks, self._streams_served
        else:
            streaks, witness = self._streaks, self._served
        if count == 1 or kid not in streaks:
            streaks[kid] = witness.mark()  # a new streak (or one begun on another replica) starts watching
        if charge.evidence:
            streaks[kid] = None
        mark = streaks[kid]
        if count >= self._max_failures and (mark is None or witness.elsewhere_since(kid, mark)):
            what = "mid-stream failures" if stream else "transient failures"
            reason = f"{count} consecutive {what} (last: {outcome.reason or outcome.status})"
            await self._store.disable(kid, reason, now)
            streaks.pop(kid, None)
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
            return AllKeysDisabled(f"all {_plural(total, 'API key')} are disabled" + (f" ({why})" if why else ""))
        tried = sum(1 for kid in ids if kid in exclude) if exclude else 0
        if picked.wait is not None:
            retry_after = float(max(1, math.ceil(picked.wait)))
            extra = f", {tried} already tried for this request" if tried else ""
            now = self._clock()
            if now + picked.wait >= next_pacific_midnight(now) - _DAILY_SLACK:
                # The earliest key back is back at Pacific midnight: the pool is out of daily quota.
                return PoolQuotaExhausted(
                    f"every usable API key for model '{model}' is out of its daily quota "
                    f"({_plural(total, 'key')} in the pool{extra}); quotas reset at midnight US Pacific time, "
                    f"in {retry_after:.0f} s", retry_after=retry_after)
            return PoolRateLimited(
                f"every usable API key for model '{model}' is cooling down after a rate limit "
                f"({_plural(total, 'key')} in the pool{extra}); retry in {retry_after:.0f} s",
                retry_after=retry_after,
            )
        return PoolExhausted(
            f"every usable API key for model '{model}' was already tried for this request "
            f"({tried} tried, {_plural(total, 'key')} in the pool)",
        )

    # -- reads and admin ------------------------------------------------------------------------------------

    def may_serve(self, model: str) -> bool:
        """Whether some key's model lists allow ``model``: the model listings leave out the others, which a
        call would only answer with ``ModelNotServed``."""
        return not self._planner.lists or bool(self._planner.plan(model).ids)

    async def wait_time(self, model: str) -> float | None:
        """Seconds until a non-disabled key can serve ``model`` (0.0: one can now); ``None`` if no key will
        without an enable. Drives the "wait for the earliest cooldown within MAX_WAIT" decision."""
        if not self._ids:
            return None
        plan: Plan = self._planner.plan(model)
        if not plan.ids:
            return None
        return await self._store.wait(plan.ids, model, self._clock())

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
                **self.policies.of(kid).view(),
                "state": state,
                "reason": st.reason,
                "disabled_at": st.disabled_at,
                "failures": st.failures,
                "stream_failures": st.stream_failures,
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
        self._streaks.pop(key_id, None)
        self._stream_streaks.pop(key_id, None)
        log.info("key %s enabled", key_id)

    async def disable(self, key_id: str, reason: str = "disabled by admin") -> None:
        """Take a key out of rotation for every model (admin)."""
        self.lease_for(key_id)
        await self._store.disable(key_id, reason, self._clock())
        log.warning("key %s disabled: %s", key_id, reason)
