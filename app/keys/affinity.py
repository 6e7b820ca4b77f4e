"""Conversation affinity: a conversation keeps one key while that key is healthy (docs/architecture.md, selection step 2).

Gemini's implicit prompt cache is per project, and thought signatures stay in one project, so consecutive turns
of a conversation are worth sending on the same key. A hint (a session header, ``prompt_cache_key``, the
OpenAI ``user``) is bound to the key that served it; the next request with the hint prefers that key, and the
pool falls back to plain rotation when the key is disabled or cooling, after which the hint is rebound to the
key that did serve. Requests without a hint keep plain round-robin. Bindings live in the hot store and expire
after ``AFFINITY_TTL`` without use (refreshed only past half their life). In Redis mode a binding read is
kept locally for ``BINDING_CACHE_TTL`` seconds and a (re)binding is written behind the request, so a hit
costs no round trip; another replica's rebinding is seen within that time (an optimisation, not a shared
decision: at worst one conversation's turns use two keys for a moment). Chat sessions keep their binding in
the session itself (``note``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .hotmap import HotMap

__all__ = ["BINDING_CACHE_TTL", "HINT_HEADERS", "Affinity", "Binding", "affinity_hint", "body_hint",
           "session_hint"]

#: Seconds a binding read from Redis is reused locally: the staleness bound of another replica's rebinding.
BINDING_CACHE_TTL = 2.0

#: Session headers, strongest first: Claude Code's, Codex's, the gateway's own.
HINT_HEADERS = ("x-claude-code-session-id", "session_id", "session-id", "x-session-id")
_MAX_HINT = 512


def _hint(kind: str, value: str) -> str:
    digest = hashlib.blake2b(value[:_MAX_HINT].encode(), digest_size=12).hexdigest()
    return f"{kind}:{digest}"


def affinity_hint(headers: Mapping[str, str]) -> str | None:
    """The strongest session header's hint, or ``None``."""
    for name in HINT_HEADERS:
        value = headers.get(name)
        if value:
            return _hint("h", value)
    return None


def body_hint(prompt_cache_key: object = None, user: object = None) -> str | None:
    """A hint from an OpenAI-style body: ``prompt_cache_key``, else ``user``."""
    if isinstance(prompt_cache_key, str) and prompt_cache_key:
        return _hint("pck", prompt_cache_key)
    if isinstance(user, str) and user:
        return _hint("u", user)
    return None


def session_hint(chat_id: str) -> str:
    """The hint of a chat session (``/send_message``): the gateway's own conversation id."""
    return _hint("chat", chat_id)


@dataclass(frozen=True, slots=True)
class Binding:
    key_id: str
    since: float


class Affinity:
    """Hint -> key bindings with a sliding expiry; counts hits, new bindings and rebinds."""

    def __init__(self, store: HotMap, ttl: float, on_event: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._ttl = ttl
        self._on_event = on_event
        self._clock = clock
        self.counts = {"hit": 0, "bind": 0, "rebind": 0}

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    async def lookup(self, hint: str) -> Binding | None:
        """The binding of ``hint``, if any (one hot-store read)."""
        if not self.enabled:
            return None
        value = (await self._store.get_many([hint]))[0]
        if not value:
            return None
        key_id, _, since = value.partition("\t")
        try:
            return Binding(key_id, float(since))
        except ValueError:
            return Binding(key_id, 0.0)

    async def settle(self, hint: str, binding: Binding | None, used: str) -> None:
        """After a request with ``hint`` was served by ``used``: count it and (re)bind when needed."""
        if not self.enabled:
            return
        now = self._clock()
        if binding is not None and binding.key_id == used:
            self._count("hit")
            if now - binding.since < self._ttl / 2:
                return
        else:
            self._count("bind" if binding is None else "rebind")
        await self._store.set(hint, f"{used}\t{now}", self._ttl)

    def note(self, bound: str | None, used: str) -> None:
        """Count a request whose binding is kept elsewhere (a chat session keeps its own key)."""
        if self.enabled:
            self._count("hit" if bound == used else "bind" if bound is None else "rebind")

    def _count(self, event: str) -> None:
        self.counts[event] += 1
        if self._on_event is not None:
            self._on_event(event)

    async def close(self) -> None:
        await self._store.close()
