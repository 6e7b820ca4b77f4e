"""Errors on the OpenAI surface: requests refused before any upstream call; Google errors in OpenAI's shape.

OpenAI clients (the SDKs, LangChain, chat UIs) branch on ``error.type``/``error.code`` and on the HTTP status,
so a Google ``{"error": {"code", "message", "status", "details"}}`` (sometimes wrapped in a one-element array,
see reference §2.1) is converted here, once. Upstream messages can echo an API key or a project number (403
SERVICE_DISABLED, CONSUMER_SUSPENDED): everything that leaves through this module is scrubbed first.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from app.gemini.limits import LimitError, check_int, check_json
from app.gemini.scrub import scrub

__all__ = [
    "RequestError",
    "bounded",
    "bounded_int",
    "UpstreamStreamError",
    "gemini_error_to_openai",
    "openai_error_body",
    "scrub",
]


class RequestError(Exception):
    """A request the gateway refuses before any upstream call (``status``, OpenAI ``invalid_request_error``).

    ``param`` names the offending field the way OpenAI does (``"messages[2].content"``, ``"temperature"``) so
    a client can see which part of its payload to fix; ``str(exc)`` is the human message.
    """

    def __init__(self, message: str, param: str | None = None, code: str | None = None,
                 status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
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


class UpstreamStreamError(Exception):
    """A stream that already answered 200 failed: a mid-stream ``{"error": …}`` chunk, or no finish at all.

    ``body`` is the *Google-shaped* error (``{"error": {"code", "message", "status"}}``) so the caller can
    feed it to the key classifier and to :func:`gemini_error_to_openai` like a non-stream upstream error.
    """

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        message = ""
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            message = str(error.get("message") or "")
        super().__init__(message or f"upstream stream failed with status {status}")
        self.status = status
        self.body = body


def openai_error_body(message: str, type_: str, param: str | None = None,
                      code: str | int | None = None) -> dict[str, Any]:
    """OpenAI's error envelope; all four keys are always present (clients index them without ``get``)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


_REASON_PHRASES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 408: "Request timeout",
    413: "Request too large", 429: "Too many requests", 500: "Internal server error", 502: "Bad gateway",
    503: "Service unavailable", 504: "Gateway timeout",
}


def _decode(body: bytes | str | dict[str, Any] | list[Any] | None) -> tuple[dict[str, Any], str]:
    """The Google ``error`` object (array wrapper removed) and, for unparseable bodies, their text."""
    raw_text = ""
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        raw = bytes(body) if not isinstance(body, str) else body.encode()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raw_text = raw.decode("utf-8", "replace").strip()[:500]
            body = None
    if isinstance(body, list):
        body = body[0] if body else None
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return error, raw_text
        if isinstance(error, str):
            return {"message": error}, raw_text
    return {}, raw_text


def _details(error: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith("." + kind)]


def _reasons(error: dict[str, Any]) -> set[str]:
    return {str(d.get("reason")) for d in _details(error, "ErrorInfo") if d.get("reason")}


def _quota_ids(error: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    for detail in _details(error, "QuotaFailure"):
        for violation in detail.get("violations") or []:
            if isinstance(violation, dict) and violation.get("quotaId"):
                ids.append(str(violation["quotaId"]))
    return ids


_UNKNOWN_NAME_RE = re.compile(r'Unknown name "([^"]+)"')


def _param(error: dict[str, Any]) -> str | None:
    """The field a Google BadRequest blames: ``fieldViolations[].field``, else the "Unknown name" in it."""
    for detail in _details(error, "BadRequest"):
        for violation in detail.get("fieldViolations") or []:
            if not isinstance(violation, dict):
                continue
            if violation.get("field"):
                return str(violation["field"])
            match = _UNKNOWN_NAME_RE.search(str(violation.get("description") or ""))
            if match:
                return match.group(1)
    return None


def gemini_error_to_openai(status: int,
                           body: bytes | dict[str, Any] | list[Any] | None) -> tuple[int, dict[str, Any]]:
    """Map a Google error (HTTP ``status`` + body, array-wrapped or not) to (status, OpenAI error body).

    The HTTP status is kept except for two cases where OpenAI clients need a different signal: a bad *pool*
    key (400 ``API_KEY_INVALID``) becomes 401 ``authentication_error`` (reference §5.6), and a mid-stream
    error (status < 400) takes the status from the error's own ``code``. A per-day quota 429 gets code
    ``insufficient_quota`` (what OpenAI sends when retrying soon is pointless); per-minute gets
    ``rate_limit_exceeded``. Gemini's ``status`` (``INVALID_ARGUMENT`` …) is the code when nothing better
    fits.
    """
    error, raw_text = _decode(body)
    code_in_body = error.get("code")
    if status < 400 and isinstance(code_in_body, int) and code_in_body >= 400:
        status = code_in_body
    elif status < 400:
        status = 502
    message = str(error.get("message") or raw_text or _REASON_PHRASES.get(status, f"Upstream error {status}"))
    message = scrub(message)
    rpc_status = error.get("status")
    code: str | None = str(rpc_status) if rpc_status else None
    param: str | None = None

    if status == 400 and "API_KEY_INVALID" in _reasons(error):
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
        quota_ids = _quota_ids(error)
        code = "insufficient_quota" if any("PerDay" in q for q in quota_ids) else "rate_limit_exceeded"
    elif status >= 500:
        type_ = "api_error"
    else:
        type_ = "invalid_request_error"
        param = _param(error)
    return status, openai_error_body(message, type_, param, code)
