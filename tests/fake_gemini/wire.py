"""Byte-level encodings of Gemini's wire formats.

Every framing choice here copies a recorded response (see ``tests/fixtures/gemini/SOURCES.md``), because the
gateway's parsers are only as good as the bytes they are tested against:

* plain JSON bodies (answers and errors) are pretty-printed with a 2-space indent and a trailing newline;
* SSE events are ``data: <json>\\r\\n\\r\\n``, ``": "`` after keys, no space after commas, no ``[DONE]``;
* the JSON-array stream (no ``alt=sse``) is ``[{...}\\n,\\r\\n{...}\\n]``, each element pretty-printed.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
SSE_CONTENT_TYPE = "text/event-stream"

# Headers Google sends on every answer; cheap to copy and they keep clients honest about ignoring them.
COMMON_HEADERS: dict[str, str] = {
    "Server": "scaffolding on HTTPServer2",
    "Vary": "Origin, X-Origin, Referer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "X-XSS-Protection": "0",
}
JSON_HEADERS: dict[str, str] = {**COMMON_HEADERS, "Content-Type": JSON_CONTENT_TYPE}
SSE_HEADERS: dict[str, str] = {
    **COMMON_HEADERS,
    "Content-Type": SSE_CONTENT_TYPE,
    "Content-Disposition": "attachment",
}

_SSE_ENCODER = json.JSONEncoder(separators=(",", ": "), ensure_ascii=False)

JSON_ARRAY_OPEN = b"["
JSON_ARRAY_SEPARATOR = b"\n,\r\n"
JSON_ARRAY_CLOSE = b"\n]"


def pretty_json(obj: Any) -> bytes:
    """Google's non-stream body: indent 2, UTF-8 unescaped, trailing newline."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def pretty_json_element(obj: Any) -> bytes:
    """One element of the JSON-array stream: indented like a body but without the trailing newline."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2)


def sse_event(obj: Any) -> bytes:
    """One SSE event exactly as Google frames it (compact but with ``": "`` after keys, CRLF CRLF)."""
    return b"data: " + _SSE_ENCODER.encode(obj).encode("utf-8") + b"\r\n\r\n"


def json_array_piece(obj: Any, first: bool) -> bytes:
    """The bytes that put ``obj`` into an incrementally written JSON array (opening bracket or separator)."""
    return (JSON_ARRAY_OPEN if first else JSON_ARRAY_SEPARATOR) + pretty_json_element(obj)


def json_array(objs: list[Any]) -> bytes:
    """A whole JSON-array stream body, as the pieces of :func:`json_array_piece` would add up to."""
    if not objs:
        return b"[]"
    return b"".join(json_array_piece(o, i == 0) for i, o in enumerate(objs)) + JSON_ARRAY_CLOSE


def split_sse_events(raw: bytes) -> list[bytes]:
    """Split a raw SSE body into events, each keeping its ``\\r\\n\\r\\n`` terminator (for byte replay)."""
    events: list[bytes] = []
    rest = raw
    while rest:
        idx = rest.find(b"\r\n\r\n")
        if idx < 0:
            events.append(rest)
            break
        events.append(rest[: idx + 4])
        rest = rest[idx + 4 :]
    return events


def parse_sse_events(raw: bytes) -> list[Any]:
    """Decode the JSON payload of every ``data:`` line (tolerates LF-only framing, for tests and fixtures)."""
    out: list[Any] = []
    for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
        if line.startswith(b"data:"):
            out.append(json.loads(line[5:].strip()))
    return out


def split_json_array(raw: bytes) -> list[bytes]:
    """Split a JSON-array stream body into its element texts by tracking brace depth, like the SDKs do."""
    elements: list[bytes] = []
    depth = 0
    in_string = False
    escaped = False
    start = -1
    for i, byte in enumerate(raw):
        ch = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and start >= 0:
                elements.append(raw[start : i + 1])
                start = -1
    return elements
