"""The chat session record and its chat_id.

A session is plain data (no methods that do I/O) so that both stores can hold it: the memory store keeps the
object, the Redis store keeps its fields in a hash with the history as JSON.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Session", "TurnRecord", "new_chat_id", "looks_like_chat_id"]

# token_urlsafe(24) gives 32 characters of this alphabet; anything else cannot be one of ours, so it is
# refused before it becomes part of a store key.
_CHAT_ID_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")


def new_chat_id() -> str:
    """192 random bits: a chat_id is the only credential send_message needs, so it must be unguessable."""
    return secrets.token_urlsafe(24)


def looks_like_chat_id(value: object) -> bool:
    return isinstance(value, str) and _CHAT_ID_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """A stored turn's id, its message's digest and the answer the client got (for retries of that turn)."""

    id: str
    digest: str
    response: str


@dataclass(slots=True)
class Session:
    """One conversation: whose it is, which model answers, with which settings, and what was said so far.

    ``history`` is a list of Gemini ``contents`` entries alternating ``user`` and ``model`` and always
    starting with a ``user`` turn (the cap drops whole exchanges). The Redis store's ``begin`` hands the stored
    entries out as ``orjson.Fragment``s (encoded JSON that ``orjson.dumps`` splices in unparsed): a turn only
    resends them and keeps them, so they are never decoded; code that must read an entry decodes it. ``generation_config`` is already in
    Gemini's camelCase form. ``created`` is epoch seconds. ``version`` counts the saved turns (a save names
    the version it read, so a save built on an older history is refused); ``turns`` are the last few stored
    turns, for retries (``app.sessions.turns``).
    """

    chat_id: str
    user_id: str
    model: str
    generation_config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    created: float = 0.0
    version: int = 0
    turns: list[TurnRecord] = field(default_factory=list)
    key_id: str = ""  # the pool key the last turn used: the chat's affinity binding, kept with the chat
