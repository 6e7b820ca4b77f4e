"""Google's error body, parsed once.

Gemini answers errors as ``{"error": {"code", "message", "status", "details": [...]}}``, sometimes wrapped in
a one-element JSON array (the JSON-array stream framing, Google's OpenAI layer). Everything the gateway
decides from an error (the pool's classification, each protocol's error rendering, the services' messages)
reads the :class:`GoogleError` made here, so one rule cannot drift into two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["GoogleError", "StreamBroke", "google_error_body", "parse_duration", "parse_error"]

_MESSAGE_RETRY_RE = re.compile(r"retry in\s+([0-9]+(?:\.[0-9]+)?)\s*(ms|s)\b", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*(ms|s)?\s*$")
_PREPAID_RE = re.compile(r"prepa(?:id|yment) credits? (?:are |is |have been )?(?:depleted|exhausted)", re.I)
_UNKNOWN_NAME_RE = re.compile(r'Unknown name "([^"]+)"')
_MAX_RETRY_AFTER = 86_400.0


def parse_duration(value: Any) -> float | None:
    """A protobuf ``Duration`` as JSON renders it (``"34s"``, ``"34.4s"``, ``"900ms"``) in seconds.

    Also the ``{"seconds": 34, "nanos": 400000000}`` object form and bare numbers, because error bodies relayed
    through other layers sometimes re-encode it. Garbage, NaN and negatives yield ``None``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m is None:
            return None
        seconds = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    elif isinstance(value, dict):
        try:
            seconds = float(value.get("seconds", 0) or 0) + float(value.get("nanos", 0) or 0) / 1e9
        except (TypeError, ValueError):
            return None
    else:
        return None
    if seconds != seconds or seconds < 0:
        return None
    return min(seconds, _MAX_RETRY_AFTER)


@dataclass(slots=True)
class GoogleError:
    """What an error body says. Fields are empty when the body did not say it (or was not JSON)."""

    code: int | None = None
    message: str = ""
    status: str = ""
    reasons: list[str] = field(default_factory=list)
    quota_ids: list[str] = field(default_factory=list)
    retry_delay: float | None = None
    field_violations: list[str] = field(default_factory=list)
    raw_text: str = ""

    @property
    def daily_quota(self) -> str | None:
        """Why this 429 lasts until Pacific midnight, or ``None`` for a short limit. The one rule: a quota id
        with ``PerDay``; prepaid credits depleted; or, with no quota id at all, a message saying "per day"."""
        daily = next((q for q in self.quota_ids if "PerDay" in q), None)
        if daily is not None:
            return daily
        if _PREPAID_RE.search(self.message):
            return "PREPAYMENT_CREDITS_DEPLETED"
        if not self.quota_ids and "per day" in self.message.lower():
            return "PerDay"
        return None

    @property
    def retry_after(self) -> float | None:
        """The larger of ``RetryInfo.retryDelay`` (rounded down to whole seconds by Google) and the message's
        precise "Please retry in 58.2s.": retrying early only earns another 429."""
        from_message: float | None = None
        m = _MESSAGE_RETRY_RE.search(self.message)
        if m is not None:
            from_message = float(m.group(1)) / (1000.0 if m.group(2).lower() == "ms" else 1.0)
            from_message = min(from_message, _MAX_RETRY_AFTER)
        if self.retry_delay is None:
            return from_message
        if from_message is None:
            return self.retry_delay
        return max(self.retry_delay, from_message)

    @property
    def param(self) -> str | None:
        """The request field a BadRequest blames (``fieldViolations[].field``, else its "Unknown name")."""
        return self.field_violations[0] if self.field_violations else None


def _error_object(body: Any) -> tuple[dict[str, Any], str]:
    raw_text = ""
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        raw = body.encode() if isinstance(body, str) else bytes(body)
        if not raw:
            return {}, ""
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}, raw.decode("utf-8", "replace").strip()[:500]
    if isinstance(body, list):
        body = next((item for item in body if isinstance(item, dict)), None)
    if not isinstance(body, dict):
        return {}, raw_text
    err = body.get("error", body)
    if isinstance(err, str):
        return {"message": err}, raw_text
    return (err if isinstance(err, dict) else {}), raw_text


def parse_error(body: bytes | str | dict[str, Any] | list[Any] | None) -> GoogleError:
    """Parse an error body (raw or decoded, array-wrapped or not); garbage gives an empty value with the text
    kept in ``raw_text``."""
    err, raw_text = _error_object(body)
    code = err.get("code")
    message = err.get("message")
    status = err.get("status")
    parsed = GoogleError(code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                         message=message if isinstance(message, str) else "",
                         status=status if isinstance(status, str) else "", raw_text=raw_text)
    details = err.get("details")
    if not isinstance(details, list):
        return parsed
    for detail in details:
        if not isinstance(detail, dict):
            continue
        type_url = detail.get("@type")
        type_name = type_url.rsplit(".", 1)[-1] if isinstance(type_url, str) else ""
        if type_name == "ErrorInfo":
            reason = detail.get("reason")
            if isinstance(reason, str) and reason:
                parsed.reasons.append(reason)
        elif type_name == "QuotaFailure":
            for violation in detail.get("violations") or ():
                if isinstance(violation, dict):
                    quota_id = violation.get("quotaId")
                    if isinstance(quota_id, str) and quota_id:
                        parsed.quota_ids.append(quota_id)
        elif type_name == "RetryInfo":
            parsed.retry_delay = parse_duration(detail.get("retryDelay"))
        elif type_name == "BadRequest":
            for violation in detail.get("fieldViolations") or ():
                if not isinstance(violation, dict):
                    continue
                if violation.get("field"):
                    parsed.field_violations.append(str(violation["field"]))
                else:
                    match = _UNKNOWN_NAME_RE.search(str(violation.get("description") or ""))
                    if match:
                        parsed.field_violations.append(match.group(1))
    return parsed


def google_error_body(status: int, message: str, rpc_status: str) -> dict[str, Any]:
    """Google's error envelope, for errors the gateway itself answers on the native surface."""
    return {"error": {"code": status, "message": message, "status": rpc_status}}


class StreamBroke(Exception):
    """A stream that already answered 200 failed: a mid-stream ``{"error": …}`` event, an unreadable event, or
    no proper end.

    ``body`` is Google-shaped (``{"error": {"code", "message", "status"}}``), so the pool classifies it like
    any upstream error and each protocol renders it like one.
    """

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        message = str(error.get("message") or "") if isinstance(error, dict) else ""
        super().__init__(message or f"upstream stream failed with status {status}")
        self.status = status
        self.body = body
