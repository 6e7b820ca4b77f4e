"""Anthropic SSE framing: the ``event:`` line is mandatory (the SDKs dispatch on it, not on ``data.type``)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["PING", "sse_event"]

PING = b'event: ping\ndata: {"type": "ping"}\n\n'


def sse_event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
