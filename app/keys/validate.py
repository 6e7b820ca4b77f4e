"""What a pool key may look like, checked where keys enter the gateway (settings and the admin API).

A key travels only in the ``x-goog-api-key`` header, so a key with a newline, a space or another control
character breaks the transport on every request that picks it (issue 12, item 8): the pool must never hold
one. The shape of a key is not validated otherwise (docs/architecture.md: key formats change). Messages name the entry
and the position of the offending character, never the key itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Separators of a pasted list: newlines, commas, spaces, tabs.
_SEPARATORS = re.compile(r"[\s,]+")
#: Values shipped in ``.env.example`` (and their obvious variants): a pool of them answers 400 forever.
_PLACEHOLDER = re.compile(r"^(your[-_]?(gemini[-_]?)?(api[-_]?)?key.*|change[-_]?me.*|<.*>|x{6,}|\.\.\.+)$",
                          re.IGNORECASE)


class KeyFormatError(ValueError):
    """A key cannot be used; the message names where, never what."""


def split_keys(values: str | Iterable[str]) -> list[str]:
    """Every key in ``values`` (one pasted string or several), split on newlines, commas and spaces."""
    items = [values] if isinstance(values, str) else list(values)
    return [part for item in items for part in _SEPARATORS.split(str(item)) if part]


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be used (without quoting it), or None when it can."""
    for position, char in enumerate(key, 1):
        if not (33 <= ord(char) <= 126):
            return f"character {position} (U+{ord(char):04X}) is not printable ASCII"
    if is_placeholder(key):
        return "it is a placeholder copied from .env.example; put a real Gemini API key there"
    return None


def is_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.match(value.strip()))


def checked_keys(values: str | Iterable[str], *, label: str = "key") -> list[str]:
    """The keys of ``values`` split and checked; raises :class:`KeyFormatError` naming the entry (1-based)."""
    keys = split_keys(values)
    for index, key in enumerate(keys, 1):
        problem = key_problem(key)
        if problem is not None:
            raise KeyFormatError(f"{label} {index} of {len(keys)} cannot be used: {problem}")
    return keys
