"""What a service hands back to a route: a JSON reply or a stream of bytes. No framework types here."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.errors import GatewayError, UpstreamError
from app.gemini.errors import google_error_body  # noqa: F401 - re-exported for the resource routes
from app.gemini.render import render_error as render_google
from app.protocols.openai_chat.errors import render_error as render_openai
from app.upstream import UpstreamResponse


@dataclass(slots=True)
class JsonReply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @classmethod
    def of(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> JsonReply:
        return cls(status, orjson.dumps(obj), headers or {})


@dataclass(slots=True)
class StreamReply:
    """A committed stream: status 200 is decided, ``body`` yields the bytes to send."""

    body: AsyncIterator[bytes]
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)
    ping: bytes | None = None  # the protocol's keep-alive during silence (None: an SSE comment)


Reply = JsonReply | StreamReply


def retry_after_header(seconds: float | None) -> dict[str, str]:
    return {"retry-after": str(max(1, math.ceil(seconds)))} if seconds is not None else {}


def upstream_error(resp: UpstreamResponse) -> UpstreamError:
    """The upstream's final error answer as the exception every surface renders."""
    return UpstreamError(resp.status, resp.body, resp.content_type, resp.outcome.retry_after, resp.key_id)


def _as_error(exc: GatewayError | UpstreamResponse) -> GatewayError:
    return upstream_error(exc) if isinstance(exc, UpstreamResponse) else exc


def openai_error_reply(exc: GatewayError | UpstreamResponse) -> JsonReply:
    """Every way an OpenAI-surface call can fail, in OpenAI's error shape (the one renderer decides)."""
    status, body, headers = render_openai(_as_error(exc))
    return JsonReply.of(body, status, headers)


def google_error_reply(exc: GatewayError | UpstreamResponse) -> JsonReply:
    """Gateway-side failures on the native surface, in Google's own error shape."""
    status, body, headers, content_type = render_google(_as_error(exc))
    if isinstance(body, bytes):
        return JsonReply(status, body, headers, content_type)
    return JsonReply.of(body, status, headers)
