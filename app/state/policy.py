"""Client tokens as objects: who may call, which models, how much. Pure data, no I/O.

``TokenRegistry`` answers "which token is this secret?" on the request path: a SHA-256 digest of the
presented secret looked up in a dict. Only digests are kept, so neither memory dumps nor the durable store
hold a usable secret, and the lookup time depends on a digest the caller cannot steer, not on how much of a
real secret it guessed. It keeps ``TokenGuard``'s ``check``/``configured`` so every surface can use it as is.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

__all__ = ["Limits", "TokenPolicy", "TokenRegistry", "hash_secret", "seed_token_id"]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def seed_token_id(secret: str) -> str:
    """Stable id of a token seeded from ``ALLOWED_TOKENS`` (same on every replica, shows nothing of it)."""
    return "tok-" + hash_secret("gateway-seed:" + secret)[:12]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-token limits; None means unlimited."""

    rpm: int | None = None
    rpd: int | None = None
    tpm: int | None = None
    tpd: int | None = None
    concurrent: int | None = None
    any: bool = field(init=False, default=False)   # some limit is set: the limiter has work to do

    def __post_init__(self) -> None:
        object.__setattr__(self, "any", any(v is not None for v in (self.rpm, self.rpd, self.tpm, self.tpd,
                                                                     self.concurrent)))


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    id: str
    name: str
    enabled: bool = True
    expires_at: float | None = None
    models: tuple[str, ...] = ()          # glob patterns; empty = every model
    limits: Limits = field(default_factory=Limits)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def allows_model(self, model: str) -> bool:
        if not self.models:
            return True
        name = model.removeprefix("models/")
        return any(fnmatchcase(name, pattern) for pattern in self.models)


class TokenRegistry:
    """Secret digest -> policy. Replaced whole (never mutated) when the durable store changes."""

    def __init__(self, seeded: Iterable[str] = ()) -> None:
        self._by_hash: dict[str, TokenPolicy] = {
            hash_secret(s): TokenPolicy(seed_token_id(s), "ALLOWED_TOKENS") for s in seeded if s}

    def replace(self, by_hash: dict[str, TokenPolicy]) -> None:
        self._by_hash = by_hash

    def lookup(self, secret: str | None) -> TokenPolicy | None:
        """The policy of ``secret``, whatever its state (the caller decides what disabled/expired mean)."""
        if not secret:
            return None
        return self._by_hash.get(hash_secret(secret))

    # TokenGuard's interface, for surfaces that only need "may this caller call at all".
    @property
    def configured(self) -> bool:
        return bool(self._by_hash)

    def check(self, secret: str | None) -> bool:
        policy = self.lookup(secret)
        return policy is not None and policy.enabled and not policy.expired(time.time())
