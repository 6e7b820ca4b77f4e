"""Errors on the OpenAI surface: requests refused before any upstream call; Google errors in OpenAI's shape.

OpenAI clients (the SDKs, LangChain, chat UIs) branch on ``error.type``/``error.code`` and on the HTTP status,
so a Google ``{"error": {"code", "message", "status", "details"}}`` (sometimes wrapped in a one-element array,
see docs/architecture.md, Wire notes) is converted here, once. Upstream messages can echo an API key or a project number (403
SERVICE_DISABLED, CONSUMER_SUSPENDED): everything that leaves through this module is scrubbed first.
"""

from __future__ import annotations

from typing import Any

from app.errors import GatewayError, InvalidRequest, PoolQuotaExhausted, RequestRejected, UpstreamError
from app.gemini.errors import StreamBroke, parse_error
from app.gemini.limits import LimitError, check_int, check_json
from app.gemini.scrub import scrub
from app.protocols.openai_chat.sse import sse_event

__all__ = [
    "RequestError",
    "bounded",
    "bounded_int",
    "render_error",
    "UpstreamStreamError",
    "gemini_error_to_openai",
    "openai_error_body",
    "scrub",
]


class RequestError(InvalidRequest):
    """A request the gateway refuses before any upstream call (``status``, OpenAI ``invalid_request_error``).

    ``param`` names the offending field the way OpenAI does (``"messages[2].content"``, ``"temperature"``) so
    a client can see which part of its payload to fix; ``str(exc)`` is the human message.
    """

    def __init__(self, message: str, param: str | None = None, code: str | None = None,
                 status: int = 400) -> None:
        super().__init__(message, param=param)
        self.code = code  # type: ignore[assignment]  # OpenAI sends null when there is no finer code
        self.status = status

    def to_openai(self) -> tuple[int, dict[str, Any]]:
        """(status, body) ready to send."""
        return self.status, openai_error_body(self.message, "invalid_request_error", self.param, self.code)


def bounded(value: Any, param: str) -> Any:
    """``value`` (forwarded to Gemini as is) once within the depth and int64 bounds, else a RequestError
    naming the place; see :mod:`app.gemini.limits`."""
    try:
        check_json(value, param)
    except LimitError as exc:
        raise RequestError(str(exc), exc.field) from None
    return value


def bounded_int(value: int, param: str) -> int:
    try:
        return check_int(value, param)
    except LimitError as exc:
        raise RequestError(str(exc), exc.field) from None


#: A committed stream that broke; the wire's own exception (kept under this name for the translators).
UpstreamStreamError = StreamBroke


def openai_error_body(message: str, type_: str, param: str | None = None,
                      code: str | int | None = None) -> dict[str, Any]:
    """OpenAI's error envelope; all four keys are always present (clients index them without ``get``)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


_REASON_PHRASES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 408: "Request timeout",
    413: "Request too large", 429: "Too many requests", 500: "Internal server error", 502: "Bad gateway",
    503: "Service unavailable", 504: "Gateway timeout",
}


def gemini_error_to_openai(status: int,
                           body: bytes | dict[str, Any] | list[Any] | None) -> tuple[int, dict[str, Any]]:
    """Map a Google error (HTTP ``status`` + body, array-wrapped or not) to (status, OpenAI error body).

    The HTTP status is kept except for two cases where OpenAI clients need a different signal: a bad *pool*
    key (400 ``API_KEY_INVALID``) becomes 401 ``authentication_error`` (docs/architecture.md, Wire notes), and a mid-stream
    error (status < 400) takes the status from the error's own ``code``. A per-day quota 429 gets code
    ``insufficient_quota`` (what OpenAI sends when retrying soon is pointless; the pool's own daily rule,
    :attr:`GoogleError.daily_quota`, so prepaid credits count too); per-minute gets
    ``rate_limit_exceeded``. Gemini's ``status`` (``INVALID_ARGUMENT`` …) is the code when nothing better
    fits.
    """
    error = parse_error(body)
    if status < 400 and error.code is not None and error.code >= 400:
        status = error.code
    elif status < 400:
        status = 502
    message = scrub(error.message or error.raw_text or _REASON_PHRASES.get(status, f"Upstream error {status}"))
    code: str | None = error.status or None
    param: str | None = None

    if status == 400 and "API_KEY_INVALID" in error.reasons:
        return 401, openai_error_body(message, "authentication_error", None, "invalid_api_key")
    if status == 401:
        type_ = "authentication_error"
    elif status == 403:
        type_ = "permission_error"
    elif status == 404:
        type_ = "not_found_error"
        if "model" in message.lower():
            code = "model_not_found"
    elif status == 429:
        type_ = "rate_limit_error"
        code = "insufficient_quota" if error.daily_quota else "rate_limit_exceeded"
    elif status >= 500:
        type_ = "api_error"
    else:
        type_ = "invalid_request_error"
        param = error.param
    return status, openai_error_body(message, type_, param, code)


_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
          404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
          502: "api_error", 503: "service_unavailable"}


def render_error(exc: GatewayError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Any gateway error as OpenAI's (status, body, headers). A daily quota also says ``x-should-retry:
    false``, which the openai and anthropic SDKs obey (they would otherwise retry every 429)."""
    if isinstance(exc, UpstreamError):
        status, body = gemini_error_to_openai(exc.status, exc.body)
        headers = exc.headers() if status == 429 else {}
        if body["error"]["code"] == "insufficient_quota":
            headers["x-should-retry"] = "false"
        return status, body, headers
    param = exc.param if isinstance(exc, RequestRejected) else None
    body = openai_error_body(exc.message, _TYPES.get(exc.status, "api_error"), param, exc.code)
    headers = exc.headers()
    if isinstance(exc, PoolQuotaExhausted):
        headers["x-should-retry"] = "false"
    return exc.status, body, headers


def stream_failure(status: int, body: dict[str, Any]) -> bytes:
    """An OpenAI error event for a failure after a stream's commit (Google-shaped ``body``)."""
    if status == 502 and body.get("error", {}).get("status") == "UNAVAILABLE":
        message = str(body["error"].get("message"))
        return sse_event(openai_error_body(message, "api_error", None, "upstream_stream_error"))
    return sse_event(gemini_error_to_openai(status, body)[1])
