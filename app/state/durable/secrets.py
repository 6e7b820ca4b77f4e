"""Pool keys at rest: Fernet encryption with ``ENCRYPTION_KEY``, and the refusal of placeholder keys.

``ENCRYPTION_KEY`` holds one or more Fernet keys separated by commas. The first encrypts; every one decrypts
(``MultiFernet``). Rotation: put the new key first and keep the old one after it, restart (every stored key is
re-encrypted with the new key at start), then drop the old one.
"""

from __future__ import annotations

import re

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["KeyCipher", "CipherError", "placeholder_reason"]

_PLACEHOLDER = re.compile(r"^(your[-_ ]|change[-_ ]?me|replace[-_ ]?me|<|\.\.\.|xxx|placeholder|example|"
                          r"todo|none$|null$|test[-_ ]?key$)", re.IGNORECASE)


class CipherError(Exception):
    """The encryption setting is unusable, or a stored key cannot be decrypted with it."""


class KeyCipher:
    """Encrypts pool keys when ``ENCRYPTION_KEY`` is set; stores them as they are otherwise."""

    def __init__(self, setting: str | None) -> None:
        parts = [p.strip() for p in (setting or "").split(",") if p.strip()]
        try:
            fernets = [Fernet(p.encode()) for p in parts]
        except (ValueError, TypeError):
            raise CipherError("ENCRYPTION_KEY must be Fernet key(s) (32 url-safe base64 bytes), e.g. from "
                              "python -c 'from cryptography.fernet import Fernet; "
                              "print(Fernet.generate_key().decode())'") from None
        self._first = fernets[0] if fernets else None
        self._fernet = MultiFernet(fernets) if fernets else None

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, key: str) -> tuple[str, int]:
        """``(stored text, enc flag)`` for a raw key."""
        if self._fernet is None:
            return key, 0
        return self._fernet.encrypt(key.encode()).decode(), 1

    def open(self, stored: str, enc: int) -> str:
        if not enc:
            return stored
        if self._fernet is None:
            raise CipherError("the store holds encrypted API keys but ENCRYPTION_KEY is not set")
        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except InvalidToken:
            raise CipherError("a stored API key cannot be decrypted with ENCRYPTION_KEY (wrong or rotated-out "
                              "key?)") from None

    def needs_reseal(self, stored: str, enc: int) -> bool:
        """Stored plain while a key is set, or sealed with a key other than the first (rotation)."""
        if self._fernet is None:
            return False
        if not enc:
            return True
        try:
            self._first.decrypt(stored.encode())  # type: ignore[union-attr]
            return False
        except InvalidToken:
            return True


def placeholder_reason(key: str) -> str | None:
    """Why ``key`` cannot be a real key (a value copied from .env.example, blanks inside), else None."""
    if not key:
        return "empty"
    if any(c.isspace() for c in key):
        return "contains whitespace"
    if _PLACEHOLDER.match(key) or "gemini-key" in key.lower():
        return "looks like a placeholder (e.g. copied from .env.example), not a key"
    return None
