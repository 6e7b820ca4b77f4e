"""Where sessions live: the ``SessionStore`` protocol and the in-process ``MemorySessionStore``.

Like the key pool's ``PoolStore``, the protocol speaks in whole operations (create within the caps, load and
refresh the idle timer, replace the history, delete) so that each is one atomic step in every backend: plain
dict work here, one Lua script in ``redis_store.py``.

Times are epoch seconds passed in by the caller, so tests drive expiry with a fake clock. A session expires
``ttl`` seconds after it was last used (created, or named by a send_message).

The caps, decided for scripts that never call end_chat:

* per user: a user at ``max_per_user`` who starts another chat loses their least recently used one (it is
  returned as evicted and then answers 404). Refusing instead would lock such a script out until the TTL ran
  out.
* in total: at ``max_total`` live sessions a new chat is refused (:class:`SessionLimitReached`, 503): evicting
  would let one crowd of users end everybody else's conversations.

Concurrent turns of one chat are serialised with a lease (:meth:`SessionStore.acquire`, ``lease.py``), so a
turn always sees the history the previous turn saved; waiting for it is bounded (:class:`ChatBusy`). A history
save is conditional: it must carry the lease that still holds the chat and the version the turn read, so a
turn that lost its lock or raced another can never overwrite or duplicate history.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .lease import ChatBusy, Lease, Saved
from .model import Session, TurnRecord
from .ratelimit import RateLimiter
from .turns import find_turn, remember

__all__ = ["Begun", "ChatBusy", "KeyedLock", "Limits", "MemorySessionStore", "Saved", "SessionLimitReached",
           "SessionStore", "StoreUnavailable", "begin_in_steps"]


class SessionLimitReached(Exception):
    """The gateway holds ``max_total`` live sessions; no new one until some end or expire."""


class StoreUnavailable(Exception):
    """The backing store (Redis) did not answer; the message names no secret."""


@dataclass(frozen=True, slots=True)
class Limits:
    ttl: float
    max_per_user: int
    max_total: int


@dataclass(slots=True)
class Begun:
    """What :meth:`SessionStore.begin` found and did. ``session`` is ``None`` for an unknown chat (or one of
    another user); ``wait`` is set when the user's rate limit refused the call (seconds until one would be
    allowed); ``lease`` is held when the turn may run (``session`` was then read under it)."""

    session: Session | None
    lease: Lease | None = None
    wait: float | None = None


class SessionStore(Protocol):
    limits: Limits

    async def begin(self, chat_id: str, now: float, *, claimed: str | None, turn_id: str | None, go: bool,
                    limiter: RateLimiter) -> Begun:
        """The start of a send_message, in as few steps as the backend allows (Redis: one round trip):
        load the chat (refreshing its idle timer; ``claimed`` must be its user if given); unless ``go`` is
        false or ``turn_id`` names a stored turn, count the call against the user's rate limit and take the
        chat's lease (waiting as :meth:`acquire` does). Raises :class:`ChatBusy` past the wait."""
        ...

    async def create(self, session: Session, now: float) -> list[str]:
        """Store a new session within the caps; return the chat_ids evicted to make room for it (same user).
        Raises :class:`SessionLimitReached` when the total cap is reached."""
        ...

    async def load(self, chat_id: str, now: float) -> Session | None:
        """The live session (a copy the caller may change), refreshing its idle timer; ``None`` if unknown,
        ended or expired."""
        ...

    async def save_history(self, chat_id: str, history: list[dict[str, Any]], now: float, *, lease: Lease,
                           expect: int, turn: TurnRecord, key_id: str = "", release: bool = False) -> Saved:
        """Replace the history, bump the version, remember ``turn`` (and ``key_id``, the chat's key binding,
        when given) and refresh the idle timer, all or nothing: only while ``lease`` holds the chat and the
        stored version is ``expect``. ``release``: give the lease back in the same step, whatever the result."""
        ...

    async def delete(self, chat_id: str, now: float) -> bool:
        """Remove the session; ``False`` if there was no live session of that id."""
        ...

    async def acquire(self, chat_id: str, wait: float | None = None) -> Lease:
        """Take the chat's turn lease, waiting at most ``wait`` seconds (the store's default if ``None``) for
        the turn before; raises :class:`ChatBusy` past that. Held for the whole of one turn."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the lease back (never raises: a lease that cannot be released lapses by itself)."""
        ...

    async def count(self, now: float) -> int:
        """Live sessions (for health and tests)."""
        ...

    async def sweep(self, now: float) -> int:
        """Drop expired sessions; return how many. Lookups never return an expired one either way."""
        ...

    async def close(self) -> None: ...


class _Slot:
    __slots__ = ("lock", "holders")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.holders = 0


class KeyedLock:
    """One ``asyncio.Lock`` per key, created on demand and dropped when nobody holds or awaits it, so idle
    chats cost nothing."""

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}

    async def acquire(self, key: str, wait: float) -> bool:
        """``False`` if the lock was not free within ``wait`` seconds."""
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        slot.holders += 1
        try:
            async with asyncio.timeout(wait):
                await slot.lock.acquire()
            return True
        except TimeoutError:
            self._leave(key, slot)
            return False
        except BaseException:
            self._leave(key, slot)
            raise

    def release(self, key: str) -> None:
        slot = self._slots[key]
        slot.lock.release()
        self._leave(key, slot)

    def _leave(self, key: str, slot: _Slot) -> None:
        slot.holders -= 1
        if slot.holders == 0:
            del self._slots[key]

    def __len__(self) -> int:
        return len(self._slots)


@dataclass(slots=True)
class _Entry:
    session: Session
    expires: float


class MemorySessionStore:
    """The embedded default. No method awaits, so each runs to completion without yielding to the event loop:
    that is what makes them atomic under asyncio without locks."""

    def __init__(self, limits: Limits, *, wait: float = 5.0) -> None:
        self.limits = limits
        self.wait = wait
        self._entries: dict[str, _Entry] = {}
        self._by_user: dict[str, set[str]] = {}
        self._locks = KeyedLock()
        self._holders: dict[str, str] = {}  # chat_id -> token of the lease that holds it

    def _live(self, chat_id: str, now: float) -> _Entry | None:
        entry = self._entries.get(chat_id)
        if entry is not None and entry.expires <= now:
            self._remove(chat_id)
            return None
        return entry

    def _remove(self, chat_id: str) -> _Entry | None:
        entry = self._entries.pop(chat_id, None)
        if entry is not None:
            chats = self._by_user.get(entry.session.user_id)
            if chats is not None:
                chats.discard(chat_id)
                if not chats:
                    del self._by_user[entry.session.user_id]
        return entry

    async def create(self, session: Session, now: float) -> list[str]:
        mine = sorted((e.expires, cid) for cid in list(self._by_user.get(session.user_id, ()))
                      if (e := self._live(cid, now)) is not None)
        excess = max(0, len(mine) - self.limits.max_per_user + 1)
        if len(self._entries) - excess >= self.limits.max_total:
            self._sweep(now)
            if len(self._entries) - excess >= self.limits.max_total:
                raise SessionLimitReached(
                    f"the gateway holds its maximum of {self.limits.max_total} sessions")
        evicted = [cid for _, cid in mine[:excess]]  # least recently used first
        for cid in evicted:
            self._remove(cid)
        stored = replace(session, generation_config=dict(session.generation_config),
                         history=list(session.history), turns=list(session.turns))
        self._entries[session.chat_id] = _Entry(stored, now + self.limits.ttl)
        self._by_user.setdefault(session.user_id, set()).add(session.chat_id)
        return evicted

    async def load(self, chat_id: str, now: float) -> Session | None:
        entry = self._live(chat_id, now)
        if entry is None:
            return None
        entry.expires = now + self.limits.ttl
        # A copy: the caller builds the next turn on it, and nothing may change here before the turn succeeds.
        return replace(entry.session, history=list(entry.session.history), turns=list(entry.session.turns))

    async def begin(self, chat_id: str, now: float, *, claimed: str | None, turn_id: str | None, go: bool,
                    limiter: RateLimiter) -> Begun:
        return await begin_in_steps(self, chat_id, now, claimed=claimed, turn_id=turn_id, go=go, limiter=limiter)

    async def save_history(self, chat_id: str, history: list[dict[str, Any]], now: float, *, lease: Lease,
                           expect: int, turn: TurnRecord, key_id: str = "", release: bool = False) -> Saved:
        saved = self._save(chat_id, history, now, lease=lease, expect=expect, turn=turn, key_id=key_id)
        if release:
            await self.release(lease)
        return saved

    def _save(self, chat_id: str, history: list[dict[str, Any]], now: float, *, lease: Lease, expect: int,
              turn: TurnRecord, key_id: str) -> Saved:
        if self._holders.get(chat_id) != lease.token or lease.lost:
            return Saved.LOST
        entry = self._live(chat_id, now)
        if entry is None:
            return Saved.GONE
        if entry.session.version != expect:
            return Saved.STALE
        entry.session.history = list(history)
        entry.session.version += 1
        entry.session.turns = remember(entry.session.turns, turn)
        if key_id:
            entry.session.key_id = key_id
        entry.expires = now + self.limits.ttl
        return Saved.SAVED

    async def delete(self, chat_id: str, now: float) -> bool:
        return self._live(chat_id, now) is not None and self._remove(chat_id) is not None

    async def acquire(self, chat_id: str, wait: float | None = None) -> Lease:
        if not await self._locks.acquire(chat_id, self.wait if wait is None else wait):
            raise ChatBusy(chat_id)
        lease = Lease(chat_id, secrets.token_hex(12))
        self._holders[chat_id] = lease.token
        return lease

    async def release(self, lease: Lease) -> None:
        if self._holders.get(lease.chat_id) == lease.token:
            del self._holders[lease.chat_id]
            self._locks.release(lease.chat_id)

    async def count(self, now: float) -> int:
        self._sweep(now)
        return len(self._entries)

    async def sweep(self, now: float) -> int:
        return self._sweep(now)

    def _sweep(self, now: float) -> int:
        expired = [cid for cid, e in self._entries.items() if e.expires <= now]
        for cid in expired:
            self._remove(cid)
        return len(expired)

    async def close(self) -> None:
        self._entries.clear()
        self._by_user.clear()


async def begin_in_steps(store: SessionStore, chat_id: str, now: float, *, claimed: str | None,
                         turn_id: str | None, go: bool, limiter: RateLimiter) -> Begun:
    """:meth:`SessionStore.begin` as separate steps: load, rate limit, lease, load again under the lease."""
    session = await store.load(chat_id, now)
    if session is None or (claimed and claimed != session.user_id):
        return Begun(None)
    if not go or (turn_id is not None and find_turn(session.turns, turn_id) is not None):
        return Begun(session)
    wait = await limiter.acquire(session.user_id, now)
    if wait is not None:
        return Begun(session, wait=wait)
    lease = await store.acquire(chat_id)
    try:
        return Begun(await store.load(chat_id, now), lease)
    except BaseException:
        await store.release(lease)
        raise
