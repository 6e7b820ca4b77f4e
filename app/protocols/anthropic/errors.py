"""Errors in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}``.

The SDKs pick their exception class from the HTTP status and Claude Code reads ``error.type``, so both must
agree with Anthropic's table: 400 invalid_request_error, 401 authentication_error, 403 permission_error,
404 not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error, 504 timeout_error and 529
overloaded_error (what Gemini's 503 "model is overloaded" means). Google's error is parsed once by the
shared Gemini error reader (scrubbed of keys and project numbers) and only re-labelled here.
"""

from __future__ import annotations

from typing import Any

from app.errors import GatewayError, PoolQuotaExhausted, RequestRejected, UpstreamError
from app.protocols.openai_chat.errors import RequestError, gemini_error_to_openai

__all__ = ["error_body", "error_type", "gemini_error_to_anthropic", "render_error", "request_error"]

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
          403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
          500: "api_error", 504: "timeout_error", 529: "overloaded_error"}


def error_type(status: int) -> str:
    """Anthropic's ``error.type`` for an HTTP status (other 4xx are invalid requests, other 5xx api errors)."""
    if status in _TYPES:
        return _TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_body(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def request_error(exc: RequestError) -> tuple[int, dict[str, Any]]:
    """A refused request, the field first as Anthropic writes it (``max_tokens: Field required``)."""
    message = f"{exc.param}: {exc.message}" if exc.param else exc.message
    return exc.status, error_body(error_type(exc.status), message)


def gemini_error_to_anthropic(status: int, body: bytes | dict[str, Any] | list[Any] | None
                              ) -> tuple[int, dict[str, Any]]:
    """(status, Anthropic error body) for a Google error; 503 becomes 529 ``overloaded_error``."""
    status, openai = gemini_error_to_openai(status, body)
    error = openai["error"]
    if status == 503:
        status = 529
    elif error.get("type") == "authentication_error":
        status = 401
    message = str(error.get("message") or "upstream error")
    if error.get("param"):
        message = f"{error['param']}: {message}"
    return status, error_body(error_type(status), message)


def render_error(exc: GatewayError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Any gateway error as Anthropic's (status, body, headers). A pool with no usable key is 529
    ``overloaded_error`` (Claude Code waits and retries it); a cooling pool 429 with ``retry-after``; a pool out
    of daily quota also says ``x-should-retry: false``, which the anthropic SDKs obey."""
    if isinstance(exc, UpstreamError):
        status, body = gemini_error_to_anthropic(exc.status, exc.body)
        return status, body, exc.headers() if status in (429, 529) else {}
    if isinstance(exc, RequestRejected):
        message = f"{exc.param}: {exc.message}" if exc.param else exc.message
        return exc.status, error_body(error_type(exc.status), message), exc.headers()
    status = 529 if exc.status == 503 else exc.status
    headers = exc.headers()
    if isinstance(exc, PoolQuotaExhausted):
        headers["x-should-retry"] = "false"
    return status, error_body(error_type(status), exc.message), headers
