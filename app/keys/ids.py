"""Key fingerprints: the only name a key has outside the upstream request header.

Logs, metrics labels, the admin API and the shared state store all refer to a key by ``key_id(key)``. The id
must be

* safe: it never shows more than 8 characters of the key (4 leading + 4 trailing, and the leading four of a
  Gemini key are always ``AIza``), so a leaked log line or dashboard leaks nothing usable;
* stable: an unsalted hash, so every replica sharing one Redis computes the same id for the same key and
  their state lines up;
* distinct: the short hash suffix keeps two keys with the same ends apart.

``scrub`` removes key-looking substrings from text that came from elsewhere (upstream error messages can echo
the key) before it reaches a log or a client.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

__all__ = ["key_id", "scrub"]

_MIN_LEN_FOR_ENDS = 16
_HASH_CHARS = 6

# Google API keys: "AIza" + 35 URL-safe characters. Anything of that shape is treated as a secret.
_GOOGLE_KEY_RE = re.compile(r"AIza[0-9A-Za-z_\-]{35}")


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


def scrub(text: str, keys: Iterable[str] = ()) -> str:
    """Replace every Google-API-key-shaped substring, and every key in ``keys``, with its ``key_id``.

    ``keys`` is any iterable of raw keys (e.g. the pool's keys, which may not follow Google's format in tests
    or behind other proxies). Cheap when there is nothing to replace.
    """
    for k in keys:
        if k and k in text:
            text = text.replace(k, key_id(k))
    if "AIza" in text:
        text = _GOOGLE_KEY_RE.sub(lambda m: key_id(m.group(0)), text)
    return text
