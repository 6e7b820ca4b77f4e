"""What a service hands back to a route: a JSON reply or a stream of bytes. No framework types here."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.keys import NoKeyAvailable
from app.protocols.openai_chat.errors import RequestError, gemini_error_to_openai, openai_error_body
from app.upstream import UpstreamResponse, UpstreamUnavailable


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


def openai_error_reply(exc: BaseException | UpstreamResponse) -> JsonReply:
    """Every way an OpenAI-surface call can fail, in OpenAI's error shape with an honest message."""
    if isinstance(exc, UpstreamResponse):
        status, body = gemini_error_to_openai(exc.status, exc.body)
        headers = retry_after_header(exc.outcome.retry_after) if status == 429 else {}
        return JsonReply.of(body, status, headers)
    if isinstance(exc, RequestError):
        return JsonReply.of(openai_error_body(str(exc), "invalid_request_error", exc.param, exc.code),
                            exc.status)
    if isinstance(exc, NoKeyAvailable):
        if exc.no_keys or exc.all_disabled:
            return JsonReply.of(openai_error_body(exc.message, "service_unavailable", None,
                                                  "no_keys_available"), 503)
        return JsonReply.of(openai_error_body(exc.message, "rate_limit_error", None, "rate_limit_exceeded"),
                            429, retry_after_header(exc.retry_after))
    if isinstance(exc, UpstreamUnavailable):
        return JsonReply.of(openai_error_body(str(exc), "api_error", None, "upstream_unavailable"), 502)
    raise TypeError(f"not an error this layer maps: {type(exc).__name__}")


def google_error_body(status: int, message: str, rpc_status: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": rpc_status}}


def google_error_reply(exc: BaseException) -> JsonReply:
    """Gateway-side failures on the native surface, in Google's own error shape."""
    if isinstance(exc, NoKeyAvailable):
        if exc.no_keys or exc.all_disabled:
            return JsonReply.of(google_error_body(503, exc.message, "UNAVAILABLE"), 503)
        return JsonReply.of(google_error_body(429, exc.message, "RESOURCE_EXHAUSTED"), 429,
                            retry_after_header(exc.retry_after))
    if isinstance(exc, UpstreamUnavailable):
        return JsonReply.of(google_error_body(502, str(exc), "UNAVAILABLE"), 502)
    raise TypeError(f"not an error this layer maps: {type(exc).__name__}")
