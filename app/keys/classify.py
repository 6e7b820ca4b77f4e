"""The one table that turns an upstream answer into an outcome class.

Every upstream answer is classified here exactly once; the key pool (``manager.py``) and the retry loop act on
the class, never on raw statuses. Keeping the table in one pure module means a recorded error body is a
complete test of the decision.

Decisions beyond DESIGN.md's table:

* A 429 is QUOTA_EXHAUSTED when any ``QuotaFailure`` violation has ``PerDay`` in its ``quotaId``; with no
  quota id at all, a message that says "per day" counts too. A daily-quota 429 still carries a short
  ``RetryInfo``, so the window is never inferred from the delay.
* A 429 for depleted prepaid credits is QUOTA_EXHAUSTED (reason ``PREPAYMENT_CREDITS_DEPLETED``): it will not
  clear within a minute, so hot-retrying the key is wasted; cooling it until Pacific midnight costs one probe
  request per model per day. Disabling it would flap, since the no-quota prober call still succeeds.
* Every other 429 (per-minute, tokens-per-minute, ``MODEL_CAPACITY_EXHAUSTED``, no details) is RATE_LIMITED.
* A 403 whose message is about access to a *resource* ("You do not have permission to access the File …",
  cached contents, tuned models) is CLIENT_ERROR, not KEY_INVALID: such resources belong to one project, and
  letting a client's bad reference disable keys would let any client empty the pool.
* ``retry_after`` is the larger of ``RetryInfo.retryDelay`` and the message's "Please retry in 58.2s.": the
  detail is rounded down to whole seconds, the message is precise, and retrying early only earns another 429.
* 1xx/3xx and status 0 are TRANSIENT: the upstream did not give a usable answer.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["OK_OUTCOME", "Outcome", "OutcomeKind", "classify", "classify_exception", "parse_duration"]


class OutcomeKind(enum.Enum):
    """What the upstream answer says about the key; values are stable strings for metrics and the store."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    KEY_INVALID = "key_invalid"
    CLIENT_ERROR = "client_error"
    TRANSIENT = "transient"


_RETRYABLE = frozenset(
    {OutcomeKind.RATE_LIMITED, OutcomeKind.QUOTA_EXHAUSTED, OutcomeKind.KEY_INVALID, OutcomeKind.TRANSIENT}
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A classified upstream answer: the class, plus what the pool needs to act on it."""

    kind: OutcomeKind
    status: int
    retry_after: float | None = None
    reason: str | None = None

    def retryable(self) -> bool:
        """Whether another attempt (on another key, or after a backoff) can succeed."""
        return self.kind in _RETRYABLE


OK_OUTCOME = Outcome(OutcomeKind.OK, 200)

_KEY_INVALID_REASONS = frozenset(
    {
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED",
        "API_KEY_IOS_APP_BLOCKED",
        "SERVICE_DISABLED",
        "CONSUMER_SUSPENDED",
        "CONSUMER_INVALID",
        "BILLING_DISABLED",
        "ACCESS_TOKEN_TYPE_UNSUPPORTED",
    }
)
_KEY_INVALID_MESSAGES = ("api key not valid", "api key not found", "api key expired")
_RESOURCE_PERMISSION_RE = re.compile(
    r"permission to access (?:the )?(?:file|cached ?content|batch|tuned ?model|corpus|document)"
    r"|cached ?content not found", re.IGNORECASE
)
_PREPAID_RE = re.compile(r"prepa(?:id|yment) credits? (?:are |is |have been )?(?:depleted|exhausted)", re.I)
_MESSAGE_RETRY_RE = re.compile(r"retry in\s+([0-9]+(?:\.[0-9]+)?)\s*(ms|s)\b", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*(ms|s)?\s*$")

_MAX_RETRY_AFTER = 86_400.0


def parse_duration(value: Any) -> float | None:
    """Parse a protobuf ``Duration`` as JSON renders it (``"34s"``, ``"34.4s"``) into seconds.

    Also accepts the ``{"seconds": 34, "nanos": 400000000}`` object form and bare numbers, because error bodies
    relayed through other layers sometimes re-encode it. Garbage yields ``None``.
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
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return min(seconds, _MAX_RETRY_AFTER)


def _error_object(body: bytes | str | dict[str, Any] | list[Any] | None) -> dict[str, Any]:
    """Return the inner ``error`` object of a Google error body, or ``{}`` when there is none.

    Unwraps the one-element JSON array used by the OpenAI-compat layer and by non-SSE streams.
    """
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        if not body:
            return {}
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return {}
    if isinstance(body, list):
        body = next((item for item in body if isinstance(item, dict)), None)
    if not isinstance(body, dict):
        return {}
    err = body.get("error")
    return err if isinstance(err, dict) else {}


@dataclass(slots=True)
class _Parsed:
    message: str
    status: str
    reasons: list[str]
    quota_ids: list[str]
    retry_delay: float | None


def _parse(err: dict[str, Any]) -> _Parsed:
    message = err.get("message")
    status = err.get("status")
    parsed = _Parsed(
        message=message if isinstance(message, str) else "",
        status=status if isinstance(status, str) else "",
        reasons=[],
        quota_ids=[],
        retry_delay=None,
    )
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
            violations = detail.get("violations")
            if isinstance(violations, list):
                for violation in violations:
                    if isinstance(violation, dict):
                        quota_id = violation.get("quotaId")
                        if isinstance(quota_id, str) and quota_id:
                            parsed.quota_ids.append(quota_id)
        elif type_name == "RetryInfo":
            parsed.retry_delay = parse_duration(detail.get("retryDelay"))
    return parsed


def _retry_after(parsed: _Parsed) -> float | None:
    from_message: float | None = None
    m = _MESSAGE_RETRY_RE.search(parsed.message)
    if m is not None:
        from_message = float(m.group(1)) / (1000.0 if m.group(2).lower() == "ms" else 1.0)
        from_message = min(from_message, _MAX_RETRY_AFTER)
    if parsed.retry_delay is None:
        return from_message
    if from_message is None:
        return parsed.retry_delay
    return max(parsed.retry_delay, from_message)


def _classify_429(parsed: _Parsed) -> Outcome:
    retry_after = _retry_after(parsed)
    daily = next((q for q in parsed.quota_ids if "PerDay" in q), None)
    if daily is not None:
        return Outcome(OutcomeKind.QUOTA_EXHAUSTED, 429, retry_after, daily)
    if _PREPAID_RE.search(parsed.message):
        return Outcome(OutcomeKind.QUOTA_EXHAUSTED, 429, retry_after, "PREPAYMENT_CREDITS_DEPLETED")
    if not parsed.quota_ids and "per day" in parsed.message.lower():
        return Outcome(OutcomeKind.QUOTA_EXHAUSTED, 429, retry_after, "PerDay")
    reason = (
        parsed.quota_ids[0]
        if parsed.quota_ids
        else (parsed.reasons[0] if parsed.reasons else parsed.status or "RESOURCE_EXHAUSTED")
    )
    return Outcome(OutcomeKind.RATE_LIMITED, 429, retry_after, reason)


def _key_reason(parsed: _Parsed) -> str | None:
    for reason in parsed.reasons:
        if reason in _KEY_INVALID_REASONS:
            return reason
    lowered = parsed.message.lower()
    if any(text in lowered for text in _KEY_INVALID_MESSAGES):
        return "API_KEY_INVALID"
    return None


def _status_name(parsed: _Parsed, status: int) -> str:
    return parsed.status or f"HTTP_{status}"


def classify(status: int, body: bytes | str | dict[str, Any] | list[Any] | None) -> Outcome:
    """Classify one upstream answer (status + error body, raw or parsed; garbage tolerated)."""
    if 200 <= status < 300:
        return OK_OUTCOME
    parsed = _parse(_error_object(body))
    if status == 429:
        return _classify_429(parsed)
    if status == 401:
        return Outcome(OutcomeKind.KEY_INVALID, status, None, _key_reason(parsed) or _status_name(parsed, status))
    if status == 403:
        if _RESOURCE_PERMISSION_RE.search(parsed.message) and _key_reason(parsed) is None:
            return Outcome(OutcomeKind.CLIENT_ERROR, status, None, "RESOURCE_PERMISSION_DENIED")
        return Outcome(OutcomeKind.KEY_INVALID, status, None, _key_reason(parsed) or _status_name(parsed, status))
    if status == 400:
        key_reason = _key_reason(parsed)
        if key_reason is not None:
            return Outcome(OutcomeKind.KEY_INVALID, status, None, key_reason)
        return Outcome(OutcomeKind.CLIENT_ERROR, status, None, _status_name(parsed, status))
    if status == 408 or status >= 500 or status < 200 or 300 <= status < 400:
        return Outcome(OutcomeKind.TRANSIENT, status, _retry_after(parsed), _status_name(parsed, status))
    return Outcome(OutcomeKind.CLIENT_ERROR, status, None, _status_name(parsed, status))


_CANCELLED = Outcome(OutcomeKind.CLIENT_ERROR, 0, None, "cancelled")


def classify_exception(exc: BaseException) -> Outcome:
    """Classify a failure that produced no HTTP answer (timeout, refused, reset, TLS, ...).

    Matches on class names along the MRO so that this module needs neither aiohttp nor httpx. A cancellation
    (client went away) is not the key's fault: it comes back as CLIENT_ERROR so the pool does nothing.
    """
    names = [cls.__name__ for cls in type(exc).__mro__]
    if "CancelledError" in names:
        return _CANCELLED
    if any("Timeout" in name for name in names):
        return Outcome(OutcomeKind.TRANSIENT, 0, None, "timeout")
    if any(n in ("ServerDisconnectedError", "RemoteProtocolError", "ConnectionResetError", "BrokenPipeError",
                 "ClientPayloadError", "ReadError", "IncompleteRead") for n in names):
        return Outcome(OutcomeKind.TRANSIENT, 0, None, "connection_reset")
    if any("Connect" in name or name == "OSError" for name in names):
        return Outcome(OutcomeKind.TRANSIENT, 0, None, "connection_error")
    return Outcome(OutcomeKind.TRANSIENT, 0, None, f"error:{type(exc).__name__}")
