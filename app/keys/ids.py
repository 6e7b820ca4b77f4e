"""Key fingerprints: the only name a key has outside the upstream request header.

Logs, metrics labels, the admin API and the shared state store all refer to a key by ``key_id(key)``. The id
must be

* safe: it never shows more than 8 characters of the key (4 leading + 4 trailing, and the leading four of a
  Gemini key are always ``AIza``), so a leaked log line or dashboard leaks nothing usable;
* stable: an unsalted hash, so every replica sharing one Redis computes the same id for the same key and
  their state lines up;
* distinct: the short hash suffix keeps two keys with the same ends apart.

``scrub`` (re-exported from :mod:`app.gemini.scrub`, where the rules live) removes keys from upstream text.
"""

from __future__ import annotations

import hashlib

from app.gemini.scrub import scrub

__all__ = ["key_id", "scrub"]

_MIN_LEN_FOR_ENDS = 16
_HASH_CHARS = 6


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(key: str) -> str:
    """Return a short, deterministic, non-secret fingerprint of ``key``.

    ``AIzaSy…x9Qc-3fa21b`` for keys of 16+ characters, ``key-3fa21b9c0d4e`` for shorter ones (which are too
    short to show any of their characters safely).
    """
    digest = _digest(key)
    if len(key) >= _MIN_LEN_FOR_ENDS:
        return f"{key[:4]}…{key[-4:]}-{digest[:_HASH_CHARS]}"
    return f"key-{digest[:12]}"
