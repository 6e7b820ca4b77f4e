"""Caller authentication: gateway tokens compared in constant time.

Every allowed token is compared on every check (no early exit), so timing tells nothing about which token,
or how much of one, matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping


class TokenGuard:
    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = [t.encode() for t in tokens if t]

    @property
    def configured(self) -> bool:
        return bool(self._tokens)

    def check(self, token: str | None) -> bool:
        if not token:
            return False
        given = token.encode()
        ok = False
        for allowed in self._tokens:
            ok |= hmac.compare_digest(given, allowed)
        return ok


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def native_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """Gemini clients send their key as ``x-goog-api-key``, ``?key=`` or (some tools) a Bearer token."""
    return headers.get("x-goog-api-key") or query.get("key") or bearer(headers)
