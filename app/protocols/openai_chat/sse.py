"""Server-sent-event framing for the OpenAI surface, plus a whole-body reader for recorded Gemini streams.

OpenAI streams are ``data: <json>\\n\\n`` events closed by ``data: [DONE]``; encoding is one ``orjson.dumps``
per chunk so the hot path allocates as little as possible. :func:`iter_sse_data` splits a *complete* body
(tests, fixtures, analytics); the live incremental reader belongs to the upstream layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

__all__ = ["DONE", "iter_sse_data", "sse_event"]

DONE = b"data: [DONE]\n\n"


def sse_event(obj: dict[str, Any]) -> bytes:
    """One OpenAI SSE event for ``obj``."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"


_EVENT_SPLIT = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def iter_sse_data(buffer: bytes | str) -> Iterator[bytes]:
    """Yield the ``data`` payload of every event in a complete SSE body.

    Gemini separates events with CRLF CRLF (docs/architecture.md, Wire notes), other servers with LF LF; both are accepted.
    Multi-line ``data:`` fields are joined with ``\\n`` as the SSE spec says; comments and other fields are
    ignored. A trailing event without its blank line is still yielded (the body is complete by contract).
    """
    raw = buffer.encode() if isinstance(buffer, str) else bytes(buffer)
    for block in _EVENT_SPLIT.split(raw):
        data_lines: list[bytes] = []
        for line in block.splitlines():
            if line.startswith(b"data:"):
                value = line[5:]
                data_lines.append(value[1:] if value.startswith(b" ") else value)
        if data_lines:
            yield b"\n".join(data_lines)
