"""Project-scoped Gemini resource names (files, cachedContents, batches): validation, the references a request
body makes, and how long a created resource lives. Pure functions; docs/architecture.md, Wire notes

A file is named ``files/<id>`` and referenced by URI (``.../v1beta/files/<id>``) in ``fileData.fileUri`` in
any part anywhere in a body; a cache is named ``cachedContents/<id>`` in the body's ``cachedContent``. Every
reference is collected, not only the first (a request may use two files).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

FILE_TTL = 48 * 3600.0
#: Without ``ttl``/``expireTime`` Google keeps a cache one hour.
DEFAULT_CACHE_TTL = 3600.0
#: Batches and anything else whose end is not announced: remembered as long as a file.
DEFAULT_TTL = FILE_TTL

COLLECTIONS = ("files", "cachedContents", "batches", "operations")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_FILE_URI_RE = re.compile(r"^https?://[^/?#]+/v1(?:beta|alpha)?/files/([A-Za-z0-9][A-Za-z0-9_-]{0,127})$")
_TTL_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)s\s*$")
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")
#: Byte markers that must be present for a body to reference anything: most bodies are not parsed at all.
_MARKERS = (b"files/", b"cachedContent", b"cached_content")


def valid_id(resource_id: str) -> bool:
    """A resource id safe to put in an upstream URL path."""
    return bool(_ID_RE.match(resource_id))


def file_name_of(uri: str) -> str | None:
    """``files/<id>`` for a Files API URI (or a bare ``files/<id>``); ``None`` for any other URI (YouTube...)."""
    if uri.startswith("files/"):
        rest = uri[6:]
        return uri if valid_id(rest) else None
    match = _FILE_URI_RE.match(uri)
    return f"files/{match.group(1)}" if match else None


def may_reference(raw: bytes) -> bool:
    """Cheap pre-check on the raw body before a JSON walk."""
    return any(marker in raw for marker in _MARKERS)


def references(body: Any) -> list[str]:
    """Every owned-resource name a request body names: files anywhere, and the top-level cachedContent."""
    found: list[str] = []
    if isinstance(body, dict):
        cached = body.get("cachedContent") or body.get("cached_content")
        if isinstance(cached, str) and cached.startswith("cachedContents/"):
            found.append(cached)
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            data = node.get("fileData") or node.get("file_data")
            if isinstance(data, dict):
                uri = data.get("fileUri") or data.get("file_uri")
                name = file_name_of(uri) if isinstance(uri, str) else None
                if name and name not in found:
                    found.append(name)
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return found


def references_in(raw: bytes) -> list[str]:
    """``references`` of a raw JSON body; nothing for bodies without a marker or that are not JSON."""
    if not raw or not may_reference(raw):
        return []
    try:
        return references(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return []


def parse_time(value: str) -> float | None:
    """Epoch seconds of an RFC 3339 time (Google sends nanoseconds; Python reads microseconds)."""
    try:
        return datetime.fromisoformat(_FRACTION_RE.sub(r"\1", value.replace("Z", "+00:00"))).timestamp()
    except ValueError:
        return None


def lifetime(name: str, obj: Any, now: float) -> float:
    """Seconds the created resource ``name`` lives: files 48 h, caches until their ``expireTime``."""
    if name.startswith("cachedContents/") and isinstance(obj, dict):
        expire = obj.get("expireTime")
        if isinstance(expire, str) and (at := parse_time(expire)) is not None:
            return max(at - now, 1.0)
        ttl = obj.get("ttl")
        if isinstance(ttl, str) and (match := _TTL_RE.match(ttl)):
            return float(match.group(1))
        return DEFAULT_CACHE_TTL
    return FILE_TTL if name.startswith("files/") else DEFAULT_TTL
