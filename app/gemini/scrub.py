"""Secret scrubbing for upstream text: the one set of rules for every surface, log and exporter.

Google's error messages can echo the calling key (``API key not valid``, ``Consumer 'api_key:…' has been
suspended``), a ``key=`` URL parameter, or the pool's project number (SERVICE_DISABLED, billing). Key formats
change (``AQ.`` auth keys join ``AIza`` ones), so the pool's actual key strings are scrubbed whatever their
shape, and the known shapes are scrubbed too for keys the caller did not pass in.

A key becomes its ``key_id`` (the operator can match it in the console; the id shows at most 8 characters);
a ``key=`` value, a ``Consumer 'api_key:…'`` name and a project number become ``[redacted]``. Replacements
never add a quote or a backslash, so scrubbing a JSON body or an SSE event keeps it valid JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["scrub", "scrub_bytes"]

# Google API keys ("AIza" + 35) and auth keys ("AQ." + a long URL-safe token).
_KEY_RE = re.compile(r"AIza[0-9A-Za-z_\-]{35}|AQ\.[0-9A-Za-z_\-.]{20,}")
# A ``key=`` URL parameter; stops before a backslash so a JSON escape (\" \u0026) is never cut in half.
_KEY_PARAM_RE = re.compile(r"([?&;]key=)[^&\s\"'<>\\]+", re.IGNORECASE)
_PROJECT_RE = re.compile(r"(projects?[/ :=]+)(\d{6,})", re.IGNORECASE)
_CONSUMER_RE = re.compile(r"(api_key:|project_number:)[^\s'\"\\]+", re.IGNORECASE)
# Cheap pre-test: most texts hold none of these and are returned untouched after one scan.
_ANY_RE = re.compile(r"AIza|AQ\.|key=|api_key:|project", re.IGNORECASE)


def _key_id(key: str) -> str:
    from app.keys.ids import key_id  # import here: app.keys re-exports this module's scrub

    return key_id(key)


def scrub(text: str, keys: Iterable[str] = ()) -> str:
    """``text`` without the given keys, key-shaped strings, ``key=`` values, consumer names and project
    numbers."""
    for key in keys:
        if key and key in text:
            text = text.replace(key, _key_id(key))
    if _ANY_RE.search(text) is None:
        return text
    text = _KEY_RE.sub(lambda m: _key_id(m.group(0)), text)
    text = _KEY_PARAM_RE.sub(r"\1[redacted]", text)
    text = _CONSUMER_RE.sub(r"\1[redacted]", text)
    return _PROJECT_RE.sub(r"\1[redacted]", text)


def scrub_bytes(data: bytes, keys: Iterable[str] = ()) -> bytes:
    """:func:`scrub` for raw upstream bytes (a JSON error body, SSE events); non-UTF-8 bytes survive."""
    text = data.decode("utf-8", "surrogateescape")
    cleaned = scrub(text, keys)
    return data if cleaned is text else cleaned.encode("utf-8", "surrogateescape")
